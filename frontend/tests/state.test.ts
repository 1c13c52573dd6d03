import { describe, expect, it } from "vitest";
import { describe as describeError } from "../src/api";
import { allowedActions, bannerText, next, type View } from "../src/state";
import type { Dashboard } from "../src/types";

const data = { generated_at: 1, mode: "paper" } as Dashboard;

describe("view state", () => {
  it("starts loading, shows data once loaded, and no banner", () => {
    const view = next({ kind: "loading" }, { type: "loaded", data, at: 5 });
    expect(view).toEqual({ kind: "ready", data, updatedAt: 5, error: null });
    expect(bannerText(view)).toBeNull();
  });

  it("a first failure is a banner, never a blank page", () => {
    const view = next({ kind: "loading" }, { type: "failed", error: "the API answered 500" });
    expect(view.kind).toBe("failed");
    expect(bannerText(view)).toBe("Cannot load the dashboard: the API answered 500");
  });

  it("a failed refresh keeps the last data under a banner, and the next success clears it", () => {
    const ready: View = { kind: "ready", data, updatedAt: 5, error: null };
    const failed = next(ready, { type: "failed", error: "the API cannot be reached" });
    expect(failed).toMatchObject({ kind: "ready", data, updatedAt: 5 });
    expect(bannerText(failed)).toContain("Showing data from the last successful refresh");
    expect(bannerText(next(failed, { type: "loaded", data, at: 9 }))).toBeNull();
  });

  it("offers only the actions that change the state", () => {
    expect(allowedActions("ACTIVE")).toEqual(["halt", "reduce"]);
    expect(allowedActions("HALTED")).toEqual(["reduce", "resume"]);
    expect(allowedActions(undefined)).toEqual(["halt", "reduce", "resume"]);
  });

  it("says why a request was refused, with the API's own message", () => {
    const body = JSON.stringify({ errors: [{ message: "needs the operators group" }] });
    expect(describeError(403, body)).toBe("not allowed (403): needs the operators group");
    expect(describeError(401, "")).toBe("not signed in (401)");
    expect(describeError(502, "<html>")).toBe("the API answered 502");
  });
});
