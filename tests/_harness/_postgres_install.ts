// Finds the PostgreSQL server programs and the user to run them as.

import { HarnessError } from "./harness_error.ts";
import { findExecutable, isExecutable, runCommand } from "./_process.ts";

const INSTALL_HINT =
  "install the server with `apt-get install -y postgresql-15` (or `postgresql`) " +
  "or `bash scripts/setup.sh`";

/** How to run PostgreSQL programs: directly, or as `postgres` through `runuser` when root. */
export async function postgresUser(): Promise<
  { prefix: string[]; owner?: { uid: number; gid: number } }
> {
  if (Deno.uid() !== 0) return { prefix: [] };
  const runuser = await findExecutable("runuser");
  if (runuser === undefined) {
    throw new HarnessError(
      "Cannot start PostgreSQL as root: PostgreSQL refuses to run as root and `runuser` " +
        "(util-linux) is missing; install util-linux or run the tests as another user",
    );
  }
  const ids = await Promise.all(["-u", "-g"].map(async (flag) => {
    try {
      return Number(
        (await runCommand(["id", flag, "postgres"], {
          cwd: "/",
          what: "look up the postgres user",
        })).trim(),
      );
    } catch (error) {
      throw new HarnessError(
        "Cannot start PostgreSQL as root: there is no `postgres` user to run it as; " +
          `${INSTALL_HINT} (it creates the user)`,
        { cause: error },
      );
    }
  }));
  const [uid = 0, gid = 0] = ids;
  return { prefix: [runuser, "-u", "postgres", "--"], owner: { uid, gid } };
}

/** The directory holding `initdb`, `postgres` and `pg_ctl`. */
export async function findPostgresBinDir(): Promise<string> {
  const candidates: string[] = [];
  const pgConfig = await findExecutable("pg_config");
  if (pgConfig !== undefined) {
    candidates.push(
      (await runCommand([pgConfig, "--bindir"], { cwd: "/", what: "ask pg_config for the bindir" }))
        .trim(),
    );
  }
  candidates.push(...await debianBinDirs());
  const initdb = await findExecutable("initdb");
  if (initdb !== undefined) candidates.push(dirname(await Deno.realPath(initdb)));
  for (const dir of candidates) {
    const complete = await Promise.all(
      ["initdb", "postgres", "pg_ctl"].map((name) => isExecutable(`${dir}/${name}`)),
    );
    if (complete.every(Boolean)) return dir;
  }
  throw new HarnessError(
    `Cannot start PostgreSQL: no directory with initdb, postgres and pg_ctl (looked in ${
      candidates.length > 0
        ? candidates.join(", ")
        : "pg_config --bindir, /usr/lib/postgresql/*/bin, PATH"
    }); ${INSTALL_HINT}`,
  );
}

/** `/usr/lib/postgresql/<version>/bin`, newest version first. */
async function debianBinDirs(): Promise<string[]> {
  const versions: number[] = [];
  try {
    for await (const entry of Deno.readDir("/usr/lib/postgresql")) {
      if (entry.isDirectory && /^\d+(\.\d+)?$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return versions.sort((a, b) => b - a).map((version) => `/usr/lib/postgresql/${version}/bin`);
}

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
