/**
 * ETags are the quoted opaque version string of `@hearsay/storage`, and the
 * conditional headers that carry them.
 */
import { parseVersion, versionToString, type Version } from '@hearsay/storage';

export function formatEtag(version: Version): string {
  return `"${versionToString(version)}"`;
}

/** An entity tag from a header: its opaque part and whether it was weak. */
interface EntityTag {
  readonly opaque: string;
  readonly weak: boolean;
}

/** `*`, a list of entity tags, or null when the header is not well-formed (RFC 9110 §8.8.3). */
export function parseEtagList(header: string): '*' | EntityTag[] | null {
  const text = header.trim();
  if (text === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  for (;;) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    let weak = false;
    if (text.startsWith('W/', i)) {
      weak = true;
      i += 2;
    }
    if (text[i] !== '"') return null;
    const close = text.indexOf('"', i + 1);
    if (close === -1) return null;
    const opaque = text.slice(i + 1, close);
    for (let j = 0; j < opaque.length; j++) {
      const c = opaque.charCodeAt(j);
      // etagc = %x21 / %x23-7E / obs-text
      if (c < 0x21 || c === 0x7f || c > 0xff) return null;
    }
    tags.push({ opaque, weak });
    i = close + 1;
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i === text.length) return tags.length > 0 ? tags : null;
    if (text[i] !== ',') return null;
    i++;
    if (tags.length > 64) return null; // bound the work per request
  }
}

/** A version from an ETag's opaque part, or undefined when it cannot be one of ours. */
export function versionFromOpaque(opaque: string): Version | undefined {
  try {
    return parseVersion(opaque) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * `If-None-Match` on a read: true when the current ETag is listed (weak
 * comparison, RFC 9110 §13.1.2) or the header is `*`.
 */
export function noneMatchHits(list: '*' | readonly EntityTag[], currentOpaque: string): boolean {
  if (list === '*') return true;
  for (const tag of list) if (tag.opaque === currentOpaque) return true;
  return false;
}
