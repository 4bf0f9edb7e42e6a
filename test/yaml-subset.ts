/**
 * A strict reader for the YAML that deploy/ is written in, for the tests (no YAML parser is installed): block
 * mappings and sequences indented with spaces, `- ` items that may open a mapping on their line, plain, single-
 * and double-quoted scalars, `#` comments and `---` between documents. Anything else (flow collections, block
 * scalars, anchors, tags, tabs, duplicate keys, a line it cannot place) throws with the line number instead of
 * being read some other way than Kubernetes would read it.
 */

/** A value read from YAML. */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  number: number;
  indent: number;
  text: string;
}

const PLAIN_SCALAR = /^[^\s\-?:,[\]{}#&*!|>'"%@`][^#]*$|^-[^\s#][^#]*$/;

function fail(line: Line | undefined, message: string): never {
  throw new Error(line ? `YAML line ${line.number}: ${message}: ${line.text}` : `YAML: ${message}`);
}

/** A scalar as the YAML 1.2 core schema reads it (integers, floats, true/false, null, strings). */
function scalar(text: string, line: Line): YamlValue {
  if (text.startsWith('"')) {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(text)) fail(line, 'bad double-quoted scalar');
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(text)) fail(line, 'bad single-quoted scalar');
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (!PLAIN_SCALAR.test(text) || text.includes(': ')) fail(line, 'not a plain scalar of the subset');
  if (/^[-+]?\d+$/.test(text)) return Number(text);
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  if (/^(true|false)$/.test(text)) return text === 'true';
  if (/^(null|~)$/.test(text)) return null;
  return text;
}

/** The text of a line without its comment (a `#` after a space, outside quotes). */
function withoutComment(text: string): string {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === '\\' && quote === '"') i++;
      else if (ch === quote) quote = '';
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#' && (i === 0 || text[i - 1] === ' ')) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

class Reader {
  private index = 0;
  private readonly lines: Line[];

  constructor(lines: Line[]) {
    this.lines = lines;
  }

  get done(): boolean {
    return this.index >= this.lines.length;
  }

  /** A block (mapping or sequence) whose lines are indented exactly `indent`. */
  block(indent: number): YamlValue {
    const first = this.lines[this.index];
    if (!first || first.indent !== indent) fail(first, `expected a block at indent ${indent}`);
    return first.text.startsWith('- ') || first.text === '-' ? this.sequence(indent) : this.mapping(indent);
  }

  private sequence(indent: number): YamlValue[] {
    const items: YamlValue[] = [];
    for (let line = this.lines[this.index]; line && line.indent === indent && line.text.startsWith('-'); line = this.lines[this.index]) {
      if (line.text === '-') fail(line, 'an empty item');
      const rest = line.text.slice(2);
      const itemIndent = indent + 2;
      if (/^[^'"\s][^:]*:( |$)/.test(rest)) {
        // `- key: value` opens a mapping whose other keys are indented like `key`.
        this.lines[this.index] = { ...line, indent: itemIndent, text: rest };
        items.push(this.mapping(itemIndent));
      } else {
        this.index++;
        items.push(scalar(rest, line));
      }
    }
    return items;
  }

  private mapping(indent: number): { [key: string]: YamlValue } {
    const map: { [key: string]: YamlValue } = {};
    for (let line = this.lines[this.index]; line && line.indent === indent; line = this.lines[this.index]) {
      const match = /^([A-Za-z0-9_.\/-]+):(?: (.*))?$/.exec(line.text);
      if (!match) fail(line, 'expected `key: value`');
      const [, key, value] = match;
      if (Object.hasOwn(map, key)) fail(line, `duplicate key ${key}`);
      this.index++;
      if (value !== undefined) {
        map[key] = scalar(value, line);
        continue;
      }
      const next = this.lines[this.index];
      // A sequence may sit at its key's indent (`key:` then `- item`), as kubectl writes it.
      const nested = next && (next.indent > indent || (next.indent === indent && next.text.startsWith('- ')));
      map[key] = nested ? this.block(next.indent) : null;
    }
    const stray = this.lines[this.index];
    if (stray && stray.indent > indent) fail(stray, 'unexpected indentation');
    return map;
  }
}

/** Reads every document of a YAML stream in the subset; throws on anything outside it. */
export function parseYamlDocuments(text: string): YamlValue[] {
  const documents: Line[][] = [[]];
  text.split('\n').forEach((raw, i) => {
    const line = { number: i + 1, indent: 0, text: raw };
    if (raw.includes('\t')) fail(line, 'a tab');
    if (raw === '---') return void documents.push([]);
    const content = withoutComment(raw);
    if (content.trim() === '') return;
    line.indent = content.length - content.trimStart().length;
    line.text = content.trimStart();
    documents.at(-1)!.push(line);
  });
  return documents.filter((lines) => lines.length > 0).map((lines) => {
    const reader = new Reader(lines);
    const value = reader.block(0);
    if (!reader.done) fail(undefined, 'text after the end of a document');
    return value;
  });
}
