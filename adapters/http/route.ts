// What the handler dispatches to: a path pattern, and one action per method.

/** What a route action is given: the request, and what dispatch learnt about it. */
export interface RouteContext {
  /** The request as received. */
  request: Request;
  /** Its parsed URL. */
  url: URL;
  /** The path pattern's groups, percent-decoded (e.g. `[session]`). */
  params: string[];
  /** The org the caller belongs to (from its API key; `"default"` without keys). */
  org: string;
}

/** Answers one method of one route. */
export type RouteAction = (context: RouteContext) => Promise<Response>;

/** A path pattern and the methods it answers. */
export interface Route {
  /** Matches the raw path; each group is a percent-encoded path segment. */
  path: RegExp;
  /** One action per method, e.g. `{ GET: history, POST: send }`. */
  methods: Record<string, RouteAction>;
  /**
   * Answers without an API key and outside rate limits (health probes); its
   * actions get the org `"default"`.
   * @default {false}
   */
  open?: boolean;
}
