/**
 * The /debug/actors page: self-contained HTML (inline CSS and script, nothing fetched from elsewhere)
 * that shows the groups rendered on the server, then follows /debug/actors/events and redraws them
 * with the same renderer on every update, keeping a list of the state changes it saw.
 */
import type { ActorsPayload } from "./actorGroups.js";
import { renderGroups } from "./actorsRender.js";

/** Only what the page itself carries: no external script, style, image or connection. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'";

const STYLE = `
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f4f6f9; }
header.top { position: sticky; top: 0; z-index: 1; display: flex; gap: 16px; align-items: center;
  padding: 8px 16px; background: #1d2430; color: #fff; }
header.top h1 { font-size: 16px; margin: 0; }
#live { color: #9fd39f; } #live.down { color: #f0a0a0; }
main { padding: 8px 16px; display: grid; grid-template-columns: 1fr 300px; gap: 16px; align-items: start; }
.group h2 { font-size: 14px; margin: 12px 0 6px; border-bottom: 1px solid #c8cfd9; }
.group[data-empty] { opacity: .55; }
.count { font-weight: normal; color: #667; }
.actor { background: #fff; border: 1px solid #c8cfd9; border-radius: 6px; margin: 6px 0; padding: 6px 10px; }
.actor header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.actor .state { background: #e3f4e1; padding: 0 4px; border-radius: 3px; }
.actor .machine, .actor .key { color: #667; } .actor .key { flex-basis: 100%; font-family: monospace; }
.status { color: #a33; }
.body { display: flex; gap: 12px; align-items: flex-start; }
.ctx { display: grid; grid-template-columns: max-content minmax(0, 260px); gap: 0 8px; margin: 4px 0;
  font-family: monospace; font-size: 11px; }
.ctx dt { color: #667; } .ctx dd { margin: 0; overflow-wrap: anywhere; }
body.nocontext .ctx, body.nocharts .chart { display: none; }
.chart, .kids { display: flex; flex-wrap: wrap; gap: 4px; align-items: flex-start; }
.chart { flex: 1; }
.st { border: 1px solid #aab3c0; border-radius: 8px; padding: 2px 6px; background: #fff; min-width: 40px; }
.st .name { font-weight: 600; white-space: nowrap; } .st i { font-weight: normal; color: #889; }
.st small { display: block; color: #889; font-size: 10px; max-width: 220px; }
.st.parallel > .kids > .st { border-style: dashed; }
.st.final { border-width: 3px; border-style: double; }
.st.initial > .name::before { content: "● "; color: #889; font-size: 9px; }
.st.on { background: #edf8ec; border-color: #3c9a3c; }
.st.leaf { background: #3c9a3c; color: #fff; } .st.leaf small, .st.leaf i { color: #dfe; }
#changes ol { list-style: none; padding: 0; margin: 0; font: 11px monospace; }
#changes li { padding: 2px 0; border-bottom: 1px solid #e2e6ec; overflow-wrap: anywhere; }
`;

// Runs in the browser; `render` is renderGroups' own source.
const CLIENT = `
const groups = document.getElementById("groups");
const changes = document.querySelector("#changes ol");
const live = document.getElementById("live");
for (const name of ["charts", "context"]) {
  document.getElementById("show-" + name).addEventListener("change", (e) => {
    document.body.classList.toggle("no" + name, !e.target.checked);
  });
}
const source = new EventSource("actors/events");
source.onopen = () => { live.textContent = "live"; live.className = ""; };
source.onerror = () => { live.textContent = "disconnected, retrying…"; live.className = "down"; };
source.addEventListener("actors", (message) => {
  const payload = JSON.parse(message.data);
  groups.innerHTML = render(payload);
  for (const change of payload.changes ?? []) {
    const item = document.createElement("li");
    item.dataset.id = change.id;
    item.dataset.to = change.to;
    item.textContent = change.at.slice(11, 23) + " " + change.id + ": " + (change.from ?? "(new)") + " → " + change.to;
    changes.prepend(item);
  }
  while (changes.children.length > 300) changes.lastElementChild.remove();
  live.textContent = "live · " + payload.at.slice(11, 19);
  live.className = "";
});
`;

export function actorsPage(payload: ActorsPayload): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Ferry · actors</title>
<style>${STYLE}</style>
</head>
<body>
<header class="top"><h1>Ferry actors</h1><span id="live">loading…</span>
<label><input type="checkbox" id="show-charts" checked> statecharts</label>
<label><input type="checkbox" id="show-context" checked> context</label></header>
<main>
<div id="groups">${renderGroups(payload)}</div>
<aside id="changes"><h2>State changes</h2><ol></ol></aside>
</main>
<script>
const render = ${renderGroups.toString()};
${CLIENT}
</script>
</body>
</html>
`;
}
