// Copies the API docs pages' scripts and styles from the npm packages (package.json pins them;
// no CDN) into the Worker's static assets. Part of the Worker's build (wrangler.toml [build]),
// so `wrangler deploy` from a fresh clone ships them; the copies are not committed.
// usage (from the repository root, after `npm ci`): node edge/vendor-docs.mjs
import { copyFileSync, existsSync } from "node:fs";

const copies = [
  ["node_modules/swagger-ui-dist/swagger-ui.css", "edge/assets/swagger/swagger-ui.css"],
  ["node_modules/swagger-ui-dist/swagger-ui-bundle.js", "edge/assets/swagger/swagger-ui-bundle.js"],
  ["node_modules/redoc/bundles/redoc.standalone.js", "edge/assets/redoc/redoc.standalone.js"],
];
for (const [from, to] of copies) {
  if (!existsSync(from)) {
    console.error(`${from} is missing: run \`npm ci\` in the repository root first`);
    process.exit(1);
  }
  copyFileSync(from, to);
}
