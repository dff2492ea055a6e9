// What the settings need of Deno's permissions, checked before anything is opened.

import { dirname, resolve } from "node:path";
import { POSTGRES_URL } from "./store/open_store.ts";

/** A setting whose target the process may not reach, and what to add. */
export interface MissingPermission {
  /** The setting, as an operator writes it (`TROUPE_DATABASE_URL`). */
  setting: string;
  /**
   * What is refused and the flag that would allow it, to follow "Cannot start: " or the like.
   * Never holds a password.
   */
  message: string;
}

/** The settings that name something outside the process. */
export interface ReachedSettings {
  /** A SQLite path, a `postgres://` URL, `memory` or `:memory:`. */
  databaseUrl: string;
  /** A `nats://` or `tls://` URL, or `null`. */
  natsUrl: string | null;
  /** The upstream's base URL, or `null`. */
  llmBaseUrl: string | null;
}

/** `Deno.permissions.query`'s answer for one descriptor. */
export type PermissionQuery = (
  descriptor: Deno.PermissionDescriptor,
) => Promise<Deno.PermissionState>;

const queryDeno: PermissionQuery = async (descriptor) =>
  (await Deno.permissions.query(descriptor)).state;

const DEFAULT_PORTS: Record<string, string> = {
  "http:": "80",
  "https:": "443",
  "postgres:": "5432",
  "postgresql:": "5432",
  "nats:": "4222",
  "tls:": "4222",
};

/**
 * Which of the settings name a host, file or directory that the process's
 * `--allow-net`, `--allow-read` or `--allow-write` do not cover. Without this,
 * a server started with the start task's narrow flags and a database elsewhere
 * fails deep in a driver (`getaddrinfo EPERM`, "Cannot connect to NATS") with
 * nothing that says a flag is missing. A PostgreSQL URL without a host (a Unix
 * socket) is left to the driver; a password in a URL never reaches a message.
 *
 * @example The start task's flags do not reach a database on another host
 * ```ts
 * import { missingPermissions } from "./_settings_permissions.ts";
 *
 * const granted = new Set(["127.0.0.1:5432"]);
 * const missing = await missingPermissions(
 *   { databaseUrl: "postgres://u:secret@db.internal/troupe", natsUrl: null, llmBaseUrl: null },
 *   (d) => Promise.resolve(d.name === "net" && granted.has(d.host!) ? "granted" : "prompt"),
 * );
 * console.assert(missing.length === 1 && missing[0]!.setting === "TROUPE_DATABASE_URL");
 * console.assert(missing[0]!.message.includes("db.internal:5432"));
 * console.assert(!missing[0]!.message.includes("secret"));
 * ```
 */
export async function missingPermissions(
  settings: ReachedSettings,
  query: PermissionQuery = queryDeno,
): Promise<MissingPermission[]> {
  const missing: MissingPermission[] = [];
  const net = async (setting: string, url: string) => {
    const parsed = URL.canParse(url) ? new URL(url) : null;
    if (parsed === null || parsed.hostname === "") return;
    const port = parsed.port || DEFAULT_PORTS[parsed.protocol] || "";
    const host = port === "" ? parsed.hostname : `${parsed.hostname}:${port}`;
    if (await query({ name: "net", host }) === "granted") return;
    missing.push({
      setting,
      message:
        `${setting}'s host ${host} is not allowed by --allow-net; add it, e.g. --allow-net=127.0.0.1,localhost,${host}`,
    });
  };

  const { databaseUrl, natsUrl, llmBaseUrl } = settings;
  if (llmBaseUrl !== null) await net("TROUPE_LLM_BASE_URL", llmBaseUrl);
  if (natsUrl !== null) await net("TROUPE_NATS_URL", natsUrl);
  if (POSTGRES_URL.test(databaseUrl)) await net("TROUPE_DATABASE_URL", databaseUrl);
  else if (databaseUrl !== "memory" && databaseUrl !== ":memory:") {
    // SQLite writes the file and its -wal and -shm beside it, and the store creates the
    // directory when it is missing: the directory is what the flags must cover.
    const directory = dirname(resolve(databaseUrl));
    const refused: string[] = [];
    for (const name of ["read", "write"] as const) {
      if (await query({ name, path: directory }) !== "granted") refused.push(`--allow-${name}`);
    }
    if (refused.length > 0) {
      missing.push({
        setting: "TROUPE_DATABASE_URL",
        message: `TROUPE_DATABASE_URL's directory ${directory} is not allowed by ${
          refused.join(" and ")
        }; put the file under a directory they allow (./data for the start and keys tasks), or add ${directory} to ${
          refused.join(" and ")
        }`,
      });
    }
  }
  return missing;
}
