/**
 * A request-target in absolute form (`http://host/path`) as the URL of a Fetch Request: a Request refuses a URL
 * with credentials, so userinfo (`user:pass@`, deprecated in HTTP by RFC 9110 section 4.2.4) is dropped; the
 * Authorization field is where credentials belong.
 */
const ABSOLUTE_FORM = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#@]*@)?/i;

/** The URL for an absolute-form target, or undefined for any other form (origin, asterisk, authority). */
export function absoluteTargetUrl(target: string): string | undefined {
  const match = ABSOLUTE_FORM.exec(target);
  if (!match) return undefined;
  return match[0].length === match[1].length ? target : match[1] + target.slice(match[0].length);
}

/**
 * Where the path of an absolute URL with an authority begins (`http://host/a?b` → the index of `/a`), or -1 when
 * it has none (`http://host`): a native server's Request URL, whose path and query are the request-target.
 */
export const pathStartOf = (url: string): number => url.indexOf('/', url.indexOf('//') + 2);
