// Sign-in. config.json (written beside index.html by deploy-frontend, or served by
// tickstep local --serve) says how: "local" (the server's one-time token, kept as a cookie)
// or "cognito" (the hosted UI, authorization code with PKCE; the access token is kept in
// sessionStorage for this tab only).

export interface AuthConfig {
  auth: "local" | "cognito";
  cognitoDomain?: string;
  clientId?: string;
  redirectUri?: string;
}

const TOKEN = "tickstep.token";
const VERIFIER = "tickstep.verifier";
const STATE = "tickstep.state";

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function challengeFor(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The access token to send, or null when the cookie does it (local); redirects to the
 * hosted UI when a Cognito sign-in is needed (and then never resolves). */
export async function signIn(config: AuthConfig): Promise<string | null> {
  if (config.auth !== "cognito") return null;
  const { cognitoDomain, clientId, redirectUri } = config;
  if (!cognitoDomain || !clientId || !redirectUri) throw new Error("config.json: incomplete");
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (code && params.get("state") === sessionStorage.getItem(STATE)) {
    const response = await fetch(`${cognitoDomain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: clientId,
        code,
        redirect_uri: redirectUri,
        code_verifier: sessionStorage.getItem(VERIFIER) ?? "",
      }),
    });
    if (!response.ok) throw new Error(`sign-in failed (${response.status})`);
    const tokens = (await response.json()) as { access_token: string };
    sessionStorage.setItem(TOKEN, tokens.access_token);
    history.replaceState(null, "", redirectUri);
  }
  const token = sessionStorage.getItem(TOKEN);
  if (token) return token;
  const verifier = randomText();
  const state = randomText();
  sessionStorage.setItem(VERIFIER, verifier);
  sessionStorage.setItem(STATE, state);
  const query = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: "openid",
    state,
    code_challenge_method: "S256",
    code_challenge: await challengeFor(verifier),
  });
  location.assign(`${cognitoDomain}/oauth2/authorize?${query}`);
  return new Promise(() => undefined);
}

/** A 401 means the token expired: forget it, so the next load signs in again. */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN);
}
