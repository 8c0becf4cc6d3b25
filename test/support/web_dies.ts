// Fault injection for daemon tests, loaded into every Node process of a daemon under test with
// NODE_OPTIONS=--import: a web process exits with code 1 at once while the file named by
// MATERIA_TEST_WEB_DIES exists (a web that keeps crashing at start). Other processes are untouched.
import fs from "node:fs";

const flag_file = process.env.MATERIA_TEST_WEB_DIES;
if (flag_file && process.argv[1]?.endsWith("/web/main.js") && fs.existsSync(flag_file)) process.exit(1);
