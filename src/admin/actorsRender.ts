/**
 * The HTML of /debug/actors' groups, drawn from a payload. The page renders it on the server and
 * again in the browser on every live update: the browser gets this very function's compiled source
 * (`renderGroups.toString()`), so it must stay self-contained — no imports, no module-level names.
 */
import type { ActorView } from "../routing/actorViews.js";
import type { ActorCard, ActorsPayload } from "./actorGroups.js";
import type { ChartState } from "./statechart.js";

export function renderGroups(payload: ActorsPayload): string {
  const esc = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const last = (path: string): string => path.slice(path.lastIndexOf(".") + 1);

  // The transitions, as a tooltip: "ELEMENT [isFeatures] → gotFeatures".
  const tip = (state: ChartState): string =>
    state.on
      .map((t) => {
        const guard = t.guard === undefined ? "" : ` [${t.guard}]`;
        const to = t.targets.length === 0 ? "(actions)" : t.targets.map(last).join(", ");
        return `${t.event}${guard} → ${to}`;
      })
      .join("\n");

  const box = (state: ChartState, active: Set<string>, initial: boolean): string => {
    const on = active.has(state.path);
    const leaf = state.states.length === 0;
    const classes = ["st", state.type, on ? "on" : "", on && leaf ? "leaf" : "", initial ? "initial" : ""];
    const invoke = state.invoke.length === 0 ? "" : ` <i>invokes ${esc(state.invoke.join(", "))}</i>`;
    const events =
      leaf && state.on.length > 0
        ? `<small>${esc([...new Set(state.on.map((t) => t.event))].join(" · "))}</small>`
        : "";
    const kids = state.states.map((child) => box(child, active, child.key === state.initial)).join("");
    return (
      `<div class="${classes.filter(Boolean).join(" ")}" data-path="${esc(state.path)}" title="${esc(tip(state))}">` +
      `<div class="name">${esc(state.key)}${invoke}</div>${events}` +
      (kids === "" ? "" : `<div class="kids">${kids}</div>`) +
      `</div>`
    );
  };

  const chart = (view: ActorView, card: ActorCard): string => {
    const root = payload.machines[view.machine];
    if (!root) return "";
    const active = new Set(card.active);
    const kids = root.states.map((child) => box(child, active, child.key === root.initial)).join("");
    return `<div class="chart ${root.type}" data-machine="${esc(view.machine)}" title="${esc(tip(root))}">${kids}</div>`;
  };

  const value = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));
  const context = (view: ActorView): string =>
    `<dl class="ctx">${Object.entries(view.context)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(value(v))}</dd>`)
      .join("")}</dl>`;

  const article = (group: string, card: ActorCard): string => {
    const root = payload.views.find((v) => v.id === card.key);
    const view = card.child === undefined ? root : root?.children.find((c) => c.id === card.child);
    if (!view) return "";
    const children = view.children.map(
      (c) => `<li>${esc(c.id)}: <b>${esc(c.machine)}</b> <code>${esc(c.state)}</code></li>`,
    );
    const shown = card.child === undefined ? card.key : `${card.key} / ${card.child}`;
    return (
      `<article class="actor" id="${esc(`${group}:${card.key}`)}" data-key="${esc(card.key)}"` +
      ` data-machine="${esc(view.machine)}" data-state="${esc(view.state)}" data-status="${esc(view.status)}">` +
      `<header><b class="title">${esc(card.title)}</b> <code class="state">${esc(view.state)}</code>` +
      ` <span class="machine">${esc(view.machine)}</span>` +
      (view.status === "active" ? "" : ` <span class="status">${esc(view.status)}</span>`) +
      `<div class="key">${esc(shown)}</div></header>` +
      `<div class="body">${context(view)}${chart(view, card)}</div>` +
      (children.length === 0 ? "" : `<ul class="children">${children.join("")}</ul>`) +
      `</article>`
    );
  };

  return payload.groups
    .map(
      (group) =>
        `<section class="group" data-group="${esc(group.id)}"${group.cards.length === 0 ? ' data-empty=""' : ""}>` +
        `<h2>${esc(group.title)} <span class="count">${group.cards.length}</span></h2>` +
        group.cards.map((card) => article(group.id, card)).join("") +
        `</section>`,
    )
    .join("");
}
