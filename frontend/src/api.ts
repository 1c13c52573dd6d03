// The page talks only to the API (same origin, under /api). On AWS a Cognito access token
// goes in the Authorization header; offline, the cookie tickstep local --serve set does.
import type { Dashboard, StateRecord } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let bearer: string | null = null;

export function useToken(token: string | null): void {
  bearer = token;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(`/api/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "the API cannot be reached");
  }
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, describe(response.status, text));
  return JSON.parse(text) as T;
}

/** What a person can act on: the API's own message when it gave one. */
export function describe(status: number, text: string): string {
  let detail = "";
  try {
    const parsed = JSON.parse(text) as { errors?: { message?: string }[]; message?: string };
    detail = parsed.errors?.[0]?.message ?? parsed.message ?? "";
  } catch {
    detail = "";
  }
  const what =
    status === 401
      ? "not signed in (401)"
      : status === 403
        ? "not allowed (403)"
        : `the API answered ${status}`;
  return detail ? `${what}: ${detail}` : what;
}

export const api = {
  dashboard: () => call<Dashboard>("GET", "dashboard"),
  change: (action: string, reason: string) => call<StateRecord>("POST", action, { reason }),
};
