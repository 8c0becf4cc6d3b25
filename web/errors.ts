/** An error whose message is meant for the client: bad input (4xx) or a state it should know (503). */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const bad_request = (message: string) => new HttpError(400, message);
export const not_found = (message: string) => new HttpError(404, message);
/** No serving file yet, or the only one there cannot be opened: the pages say so, /healthz fails. */
export const no_data = (message: string) => new HttpError(503, message);
