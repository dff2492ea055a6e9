// Finds, runs and supervises the external programs the harness starts.

import { HarnessError } from "./harness_error.ts";

/** Directories searched after `PATH`: Debian puts daemons in sbin. */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Returns the path of an executable named `name` on `PATH` or in the usual bin dirs. */
export async function findExecutable(name: string): Promise<string | undefined> {
  const path = Deno.env.get("PATH") ?? "";
  const dirs = [...path.split(":").filter((dir) => dir !== ""), ...EXTRA_DIRS];
  for (const dir of new Set(dirs)) {
    const candidate = `${dir}/${name}`;
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Whether `path` is a regular file someone may execute. */
export async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
      return false;
    }
    throw error;
  }
}

/** Options for {@linkcode runCommand}. */
export interface RunCommandOptions {
  /** Working directory of the command. */
  cwd: string;
  /** What the command does, for the error message ("initialise PostgreSQL"). */
  what: string;
}

/**
 * Runs a command to completion and returns its stdout; a non-zero exit
 * throws a {@linkcode HarnessError} carrying the command line and its output.
 */
export async function runCommand(
  argv: readonly string[],
  options: RunCommandOptions,
): Promise<string> {
  const [command, ...args] = argv;
  if (command === undefined) throw new TypeError("Cannot run a command: argv is empty");
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  if (!output.success) {
    const stderr = decoder.decode(output.stderr);
    throw new HarnessError(
      `Cannot ${options.what}: \`${argv.join(" ")}\` exited with code ${output.code}\n` +
        `${stderr}${stdout}`.trim(),
    );
  }
  return stdout;
}

/** A long-running child process whose stderr is kept for error messages. */
export interface ServiceProcess {
  /** Process id of the direct child. */
  readonly pid: number;
  /** Settles once the child has exited and its stderr has been read to the end. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Whether the child has exited. */
  exited(): boolean;
  /** The last part of what the child wrote to stderr. */
  log(): string;
  /** Sends a signal unless the child has already exited. */
  signal(signal: Deno.Signal): void;
}

/** How much of a child's stderr to keep. */
const LOG_LIMIT = 16_384;

/**
 * Spawns a long-running child with stdin and stdout closed and stderr read
 * into a bounded buffer, so the pipe never fills and nothing leaks once
 * `status` has settled.
 */
export function spawnService(argv: readonly string[], options: { cwd: string }): ServiceProcess {
  const [command, ...args] = argv;
  if (command === undefined) throw new TypeError("Cannot spawn a service: argv is empty");
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  let exited = false;
  const drained = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      log = (log + decoder.decode(chunk, { stream: true })).slice(-LOG_LIMIT);
    }
  })();
  const childStatus = child.status.then((status) => {
    exited = true;
    return status;
  });
  const status = Promise.all([childStatus, drained]).then(([status]) => status);
  return {
    pid: child.pid,
    status,
    exited: () => exited,
    log: () => log,
    signal(signal) {
      if (exited) return;
      try {
        child.kill(signal);
      } catch (error) {
        // The child exited between the check and the kill; nothing to signal.
        if (!(error instanceof TypeError)) throw error;
      }
    },
  };
}
