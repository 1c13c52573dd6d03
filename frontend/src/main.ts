import "./style.css";
import { api, ApiError, useToken } from "./api";
import { type AuthConfig, forgetToken, signIn } from "./auth";
import { renderCharts } from "./charts";
import { byId } from "./dom";
import { renderMarkets, renderOperations, renderOrders, renderState, renderSummary, renderTableHeads } from "./render";
import { ACTIONS, type Action, bannerText, next, type View } from "./state";

const REFRESH_MS = 5000;
let view: View = { kind: "loading" };
let timer: number | undefined;

function show(): void {
  const banner = byId("banner");
  const text = bannerText(view);
  banner.hidden = text === null;
  banner.textContent = text ?? "";
  const main = byId("main");
  main.setAttribute("aria-busy", String(view.kind === "loading"));
  if (view.kind === "failed") {
    byId("updated").textContent = "Not loaded";
    byId("state-value").textContent = "Unknown";
    return;
  }
  if (view.kind !== "ready") return;
  const data = view.data;
  byId("updated").textContent = `Last updated ${new Date(view.updatedAt).toLocaleTimeString()}`;
  renderState(data);
  renderSummary(data);
  renderMarkets(data);
  renderOrders(data);
  renderOperations(data);
  renderCharts(data, byId("charts"));
}

async function refresh(): Promise<void> {
  clearTimeout(timer);
  try {
    view = next(view, { type: "loaded", data: await api.dashboard(), at: Date.now() });
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) forgetToken();
    view = next(view, { type: "failed", error: exc instanceof Error ? exc.message : String(exc) });
  }
  show();
  timer = window.setTimeout(refresh, REFRESH_MS);
}

function wireActions(): void {
  const dialog = byId<HTMLDialogElement>("confirm");
  const form = byId<HTMLFormElement>("confirm-form");
  const reason = byId<HTMLTextAreaElement>("reason");
  const error = byId("confirm-error");
  const ok = byId<HTMLButtonElement>("confirm-ok");
  let chosen: Action = "halt";
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-action]")) {
    button.addEventListener("click", () => {
      chosen = button.dataset.action as Action;
      const action = ACTIONS[chosen];
      byId("confirm-title").textContent = `${action.verb} trading?`;
      byId("confirm-text").textContent = `${action.text} The state becomes ${action.state}.`;
      ok.textContent = `Confirm ${action.verb.toLowerCase()}`;
      ok.className = chosen === "resume" ? "" : "danger";
      reason.value = "";
      error.textContent = "";
      dialog.showModal();
      reason.focus();
    });
  }
  byId("confirm-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      error.textContent = "Say why: the reason is kept with the change.";
      return;
    }
    ok.disabled = true;
    try {
      await api.change(chosen, reason.value.trim());
      dialog.close();
      await refresh();
    } catch (exc) {
      error.textContent = exc instanceof Error ? exc.message : String(exc);
    } finally {
      ok.disabled = false;
    }
  });
}

async function start(): Promise<void> {
  renderTableHeads();
  wireActions();
  try {
    const response = await fetch("/config.json", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new ApiError(response.status, `config.json: ${response.status}`);
    useToken(await signIn((await response.json()) as AuthConfig));
  } catch (exc) {
    view = next(view, { type: "failed", error: exc instanceof Error ? exc.message : String(exc) });
    show();
    return;
  }
  await refresh();
}

void start();
