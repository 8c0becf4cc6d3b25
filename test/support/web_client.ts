// A client of the web app as a browser or a script would be: plain fetch, no redirects followed,
// and the forms' CSRF session (cookie + token) taken from the page that shows the form.

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

export async function get(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const response = await fetch(base + path, { redirect: "manual", ...init });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`admin:${password}`).toString("base64")}` });

/** A urlencoded POST, as an HTML form sends it. */
export const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});

export interface FormSession {
  /** The session cookie, as a Cookie header value. */
  cookie: string;
  /** The form's hidden csrf_token. */
  token: string;
}

/**
 * Loads the page at `path` as a new browser would (no cookie, or the one given) and returns the
 * session cookie it set and the token of its form.
 */
export async function form_session(base: string, path: string, headers: Record<string, string> = {}): Promise<FormSession> {
  const page = await get(base, path, { headers });
  if (page.status !== 200) throw new Error(`${path} answered ${page.status}: ${page.text.slice(0, 200)}`);
  const token = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
  const set_cookie = page.headers.getSetCookie().find((cookie) => cookie.startsWith("beanflows_session="))?.split(";")[0];
  const cookie = set_cookie ?? headers.cookie;
  if (token === undefined || cookie === undefined) throw new Error(`${path} shows no form with a CSRF session`);
  return { cookie, token };
}
