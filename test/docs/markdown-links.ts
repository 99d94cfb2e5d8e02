import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** A relative link in a markdown file, with the line it is on. */
export interface MarkdownLink {
  readonly line: number;
  readonly target: string;
}

const FENCE = /^\s*(```|~~~)/;
const INLINE_LINK = /!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
const REFERENCE_DEFINITION = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** The lines of a markdown text outside fenced code blocks, with inline code spans blanked. */
function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fenced = false;
  text.split('\n').forEach((raw, i) => {
    if (FENCE.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (!fenced) out.push({ line: i + 1, text: raw.replace(/`[^`]*`/g, (m) => ' '.repeat(m.length)) });
  });
  return out;
}

/** Every link that is not a URL with a scheme (http:, mailto: ...): files of this repository and #anchors. */
export function relativeLinks(text: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    for (const m of prose.matchAll(INLINE_LINK)) {
      const target = m[1];
      if (target !== undefined && !SCHEME.test(target)) links.push({ line, target });
    }
    const ref = REFERENCE_DEFINITION.exec(prose)?.[1];
    if (ref !== undefined && !SCHEME.test(ref)) links.push({ line, target: ref });
  }
  return links;
}

/**
 * GitHub's heading anchor (github-slugger): the rendered text lower-cased, punctuation dropped,
 * spaces turned into hyphens.
 */
export function githubSlug(heading: string): string {
  // HTML tags vanish from the rendered text, but `<id>` inside a code span is text.
  const rendered = heading
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '')))
    .join('')
    .trim();
  return rendered
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a markdown text's headings get on GitHub; repeated headings get -1, -2, ... */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const { text: prose } of proseLinesKeepingCode(text)) {
    const m = HEADING.exec(prose);
    if (m?.[2] === undefined) continue;
    const slug = githubSlug(m[2]);
    const n = counts.get(slug) ?? 0;
    counts.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Like proseLines, but inline code keeps its text (a heading's code span is part of its anchor). */
function proseLinesKeepingCode(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fenced = false;
  text.split('\n').forEach((raw, i) => {
    if (FENCE.test(raw)) fenced = !fenced;
    else if (!fenced) out.push({ line: i + 1, text: raw });
  });
  return out;
}

/** Problems with the relative links of one markdown file: missing files and missing anchors. */
export function brokenLinks(file: string, root: string, read = (f: string) => readFileSync(f, 'utf8')): string[] {
  const problems: string[] = [];
  const text = read(file);
  for (const { line, target } of relativeLinks(text)) {
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = pathPart === '' ? file : join(dirname(file), pathPart.split('?')[0] ?? '');
    const where = `${relative(root, file)}:${line}: ${target}`;
    if (!existsSync(resolved)) {
      problems.push(`${where}: ${relative(root, resolved)} does not exist`);
      continue;
    }
    if (anchor === undefined || anchor === '' || !resolved.endsWith('.md') || statSync(resolved).isDirectory())
      continue;
    if (!headingAnchors(read(resolved)).has(anchor)) {
      problems.push(`${where}: no heading with the anchor #${anchor} in ${relative(root, resolved)}`);
    }
  }
  return problems;
}
