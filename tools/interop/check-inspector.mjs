// Asserts on the JSON the Inspector CLI printed. Usage: node check-inspector.mjs <kind> <file> [arg]
//   tools   <file>        -> tools[] contains test_echo and batch
//   echo    <file> <msg>  -> structuredContent.text === msg and isError is not true
//   iserror <file> [word] -> isError === true (and content text mentions word, if given)
//   static  <file>        -> contents[0] is test://static-text with non-empty text
// Prints nothing and exits 0 on success; prints the reason and exits 1 otherwise.
import { readFileSync } from "node:fs";
const [kind, file, arg] = process.argv.slice(2);
let j;
try { j = JSON.parse(readFileSync(file, "utf8")); }
catch (e) { console.log(`stdout is not JSON: ${e.message}`); process.exit(1); }
const text = (r) => (r.content ?? []).map((c) => c.text ?? "").join(" ");
let why = null;
if (kind === "tools") {
  const names = (j.tools ?? []).map((t) => t.name);
  const missing = ["test_echo", "batch"].filter((n) => !names.includes(n));
  if (missing.length) why = `missing ${missing} in [${names}]`;
} else if (kind === "echo") {
  if (j.isError === true) why = `isError: ${text(j)}`;
  else if (j.structuredContent?.text !== arg) why = `structuredContent=${JSON.stringify(j.structuredContent)}`;
} else if (kind === "iserror") {
  if (j.isError !== true) why = `expected isError, got ${JSON.stringify(j)}`;
  else if (arg && !text(j).includes(arg)) why = `error does not mention "${arg}": ${text(j)}`;
} else if (kind === "static") {
  const c = j.contents?.[0];
  if (!c || c.uri !== "test://static-text" || !c.text) why = `contents=${JSON.stringify(j.contents)}`;
} else why = `unknown check kind ${kind}`;
if (why) { console.log(why.split("\n")[0]); process.exit(1); }
