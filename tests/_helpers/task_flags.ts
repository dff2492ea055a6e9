// A deno.json task's `deno run` flags, for tests that run the task's script from another directory.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

/**
 * The flags of `task` (which must be `deno run <flags> <script>`), checked to
 * be narrow. Read paths of the code (`./actors`, `./adapters`, `./lib`: the
 * workers load their modules from there) are made absolute against the
 * checkout, so the script can run in a temp dir; `./data` stays relative to it.
 */
export async function taskFlags(task: string, script: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const words = (config.tasks[task] as string).trim().split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "run"]);
  assertEquals(words.at(-1), script);
  const flags = words.slice(2, -1);
  assert(!flags.includes("-A") && !flags.includes("--allow-all"), `${task} runs with narrow flags`);
  return flags.map((flag) => {
    if (!flag.startsWith("--allow-read=")) return flag;
    const paths = flag.slice("--allow-read=".length).split(",").map((path) =>
      path === "./data" ? path : new URL(path, ROOT).pathname
    );
    return `--allow-read=${paths.join(",")}`;
  });
}
