import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";

// The one header policy of every response. Express applies it as middleware; responses written
// without Express (the fast path for cached pages and assets) send the headers recorded from the
// same middleware once, so the two can never disagree.

export const security_headers = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  },
});

/** What `security_headers` sets on a response, as a flat [name, value, …] list for writeHead. */
export function recorded_security_headers(): string[] {
  const recorded = new Map<string, string>();
  const recorder = {
    setHeader(name: string, value: unknown) {
      recorded.set(name, String(value));
      return recorder;
    },
    removeHeader(name: string) {
      recorded.delete(name);
    },
  };
  let finished = false;
  security_headers({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  assert.ok(finished, "the header policy runs synchronously and depends on no request");
  return [...recorded].flat();
}
