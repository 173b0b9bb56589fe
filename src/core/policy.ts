/**
 * Policy engine for the oslo.policy rule language.
 *
 * Every OpenStack service authorises requests with named rules written in
 * the same small language (`role:admin or project_id:%(target.project_id)s`),
 * and operators override them in a `policy.yaml`. Speaking that language lets
 * existing policy files and the operators' habits carry over unchanged.
 *
 * Rules are parsed once, when they are registered or overridden, into a small
 * tree; enforcement walks that tree without allocating in the common cases
 * (no closures, no intermediate arrays, role names compared in place).
 *
 * Deliberate differences from oslo.policy, all in the fail-closed direction:
 * - a rule that does not parse is rejected at load time (`PolicySyntaxError`)
 *   instead of being logged and silently turned into "deny";
 * - `http:`/`https:` checks (remote authorisation) are not supported and are
 *   rejected at load time;
 * - cycles between rules (`a: rule:b`, `b: rule:a`) are rejected at load time;
 * - a target or credential value that is `null`/`undefined` never matches:
 *   oslo renders both as the string `None`, which makes an unscoped token
 *   "match" a target with no project;
 * - quoted strings may contain spaces (`name:'two words'`).
 */

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';

// ---------------------------------------------------------------------------
// Public types and errors
// ---------------------------------------------------------------------------

/** A rule as registered by the code that enforces it. */
export interface PolicyDefault {
  rule: string;
  description?: string;
}

/** What the caller is: the attributes rules may test on the left of a check. */
export interface PolicyCredentials {
  user_id?: string;
  project_id?: string | null;
  domain_id?: string | null;
  system_scope?: string | null;
  roles: string[];
  [k: string]: unknown;
}

/** One node of an explained evaluation. */
export interface PolicyTraceNode {
  kind: 'always' | 'never' | 'role' | 'rule' | 'generic' | 'and' | 'or' | 'not';
  /** Canonical text of this sub-expression. */
  text: string;
  result: boolean;
  /** For leaf checks: what was compared, or why the check could not match. */
  detail?: string;
  /** Operands of and/or/not; for `rule:` the referenced rule's tree. */
  children?: PolicyTraceNode[];
}

/** One leaf check of an explained evaluation, flattened. */
export interface PolicyCheckTrace {
  check: string;
  result: boolean;
  detail: string;
  /** Names of the rules this check was reached through, outermost first. */
  via: string[];
}

/** The full story of one enforcement, for debugging a 403. */
export interface PolicyTrace {
  rule: string;
  expression: string;
  result: boolean;
  tree: PolicyTraceNode;
  /** Every leaf check, in left-to-right order (no short-circuiting). */
  checks: PolicyCheckTrace[];
}

/**
 * A rule that cannot be understood. Thrown at load time so that a typo in a
 * policy file stops the service from starting instead of quietly denying (or
 * allowing) an API.
 */
export class PolicySyntaxError extends Error {
  constructor(
    /** The offending rule text. */
    readonly ruleText: string,
    reason: string,
    /** Name of the rule, when known. */
    readonly ruleName?: string,
  ) {
    super(`Invalid policy rule${ruleName !== undefined ? ` "${ruleName}"` : ''}: ${reason} in ${JSON.stringify(ruleText)}`);
    this.name = 'PolicySyntaxError';
  }
}

/**
 * Enforcing a rule nobody registered is a programming error (usually a typo
 * in a route definition); failing loudly beats a silent deny that looks like
 * a permissions problem.
 */
export class PolicyNotRegisteredError extends Error {
  constructor(readonly rule: string) {
    super(`Policy rule "${rule}" is not registered`);
    this.name = 'PolicyNotRegisteredError';
  }
}

// ---------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------

/** A dotted name, pre-split so lookups do no string work at enforcement time. */
interface Ref {
  /** The whole name, looked up as a flat key first. */
  flat: string;
  /** The same name split on dots, for the nested lookup. */
  path: string[];
}

/**
 * The right side of a check: literal text mixed with `%(name)s` placeholders.
 * `parts` alternates literal strings and refs; a template with exactly one
 * placeholder and no literal text has `single` set (the common case, which
 * then needs no string concatenation).
 */
interface Template {
  parts: Array<string | Ref>;
  single: Ref | null;
  /** Set when the template has no placeholders. */
  constant: string | null;
}

type Node =
  | { t: 'always' }
  | { t: 'never' }
  | { t: 'and'; c: Node[] }
  | { t: 'or'; c: Node[] }
  | { t: 'not'; c: Node }
  | { t: 'rule'; name: string }
  | { t: 'role'; match: Template; lower: string | null }
  | { t: 'generic'; kind: string; left: Ref | null; literal: string | null; match: Template };

const ALWAYS: Node = { t: 'always' };
const NEVER: Node = { t: 'never' };

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

type Token = { k: '(' } | { k: ')' } | { k: 'and' } | { k: 'or' } | { k: 'not' } | { k: 'check'; text: string };

const isSpace = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';

/**
 * Splits a rule into tokens the way oslo.policy does (whitespace-separated
 * words, leading `(` and trailing `)` peeled off as parentheses), except that
 * a quote opening a word or a check's right side runs to its closing quote,
 * spaces included.
 */
function tokenize(text: string, name: string | undefined): Token[] {
  const out: Token[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (isSpace(text[i]!)) {
      i++;
      continue;
    }
    // One whitespace-delimited word, honouring quotes.
    const start = i;
    while (i < n && !isSpace(text[i]!)) {
      const ch = text[i]!;
      const quoteCanOpen = i === start || text[i - 1] === ':' || text[i - 1] === '(';
      if ((ch === "'" || ch === '"') && quoteCanOpen) {
        const close = text.indexOf(ch, i + 1);
        if (close < 0) throw new PolicySyntaxError(text, 'unterminated quoted string', name);
        i = close + 1;
      } else {
        i++;
      }
    }
    let word = text.slice(start, i);
    while (word.startsWith('(')) {
      out.push({ k: '(' });
      word = word.slice(1);
    }
    let trailing = 0;
    while (word.endsWith(')') && !endsInsideTemplate(word)) {
      trailing++;
      word = word.slice(0, -1);
    }
    if (word.length > 0) {
      const lowered = word.toLowerCase();
      if (lowered === 'and' || lowered === 'or' || lowered === 'not') out.push({ k: lowered });
      else out.push({ k: 'check', text: word });
    }
    for (let j = 0; j < trailing; j++) out.push({ k: ')' });
  }
  return out;
}

/**
 * True when the `)` ending `word` closes a `%(name` placeholder rather than
 * a group, as in `role:%(x)` (malformed, but it must not be eaten as a paren
 * so the template parser can report it).
 */
function endsInsideTemplate(word: string): boolean {
  const open = word.lastIndexOf('%(');
  return open >= 0 && word.indexOf(')', open) === word.length - 1;
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

const IDENT = /^[A-Za-z_][A-Za-z0-9_\-.]*$/;
const NUMBER = /^-?\d+(\.\d+)?$/;

function makeRef(name: string): Ref {
  return { flat: name, path: name.split('.') };
}

function unquote(s: string): string | null {
  if (s.length >= 2 && (s[0] === "'" || s[0] === '"') && s[s.length - 1] === s[0]) return s.slice(1, -1);
  return null;
}

/** Parses the right side of a check into literal text and placeholders. */
function parseTemplate(src: string, rule: string, name: string | undefined): Template {
  const quoted = unquote(src);
  if (quoted !== null) return { parts: [quoted], single: null, constant: quoted };
  const parts: Array<string | Ref> = [];
  let lit = '';
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === '%' && src[i + 1] === '%') {
      lit += '%';
      i += 2;
    } else if (ch === '%' && src[i + 1] === '(') {
      const close = src.indexOf(')', i + 2);
      if (close < 0) throw new PolicySyntaxError(rule, `unterminated substitution in "${src}"`, name);
      const key = src.slice(i + 2, close);
      if (key.length === 0) throw new PolicySyntaxError(rule, `empty substitution in "${src}"`, name);
      if (src[close + 1] !== 's') throw new PolicySyntaxError(rule, `substitution "%(${key})" must end in "s"`, name);
      if (lit) parts.push(lit);
      lit = '';
      parts.push(makeRef(key));
      i = close + 2;
    } else {
      lit += ch;
      i++;
    }
  }
  if (lit) parts.push(lit);
  const single = parts.length === 1 && typeof parts[0] !== 'string' ? parts[0]! : null;
  const constant = parts.every((p) => typeof p === 'string') ? (parts as string[]).join('') : null;
  return { parts, single: single as Ref | null, constant };
}

/** Interprets the left side of a generic check as a Python-style literal, if it is one. */
function parseLiteral(kind: string): string | null {
  const q = unquote(kind);
  if (q !== null) return q;
  if (kind === 'True' || kind === 'False') return kind;
  if (NUMBER.test(kind)) return kind;
  return null;
}

function parseCheck(word: string, rule: string, name: string | undefined): Node {
  if (word === '@') return ALWAYS;
  if (word === '!') return NEVER;
  const colon = word.indexOf(':');
  // A quoted left side may itself contain a colon: find the colon after the closing quote.
  let split = colon;
  if (word[0] === "'" || word[0] === '"') {
    const close = word.indexOf(word[0], 1);
    split = close < 0 ? -1 : word.indexOf(':', close + 1);
  }
  if (split < 0) throw new PolicySyntaxError(rule, `"${word}" is not a check (expected kind:match, "@" or "!")`, name);
  const kind = word.slice(0, split);
  const match = word.slice(split + 1);
  if (kind.length === 0) throw new PolicySyntaxError(rule, `check "${word}" has an empty left side`, name);
  if (match.length === 0) throw new PolicySyntaxError(rule, `check "${word}" has an empty right side (use '' for an empty string)`, name);
  if (kind === 'rule') {
    if (!/^[^\s()'"%]+$/.test(match)) throw new PolicySyntaxError(rule, `bad rule name "${match}"`, name);
    return { t: 'rule', name: match };
  }
  if (kind === 'role') {
    const tpl = parseTemplate(match, rule, name);
    return { t: 'role', match: tpl, lower: tpl.constant === null ? null : tpl.constant.toLowerCase() };
  }
  if (kind === 'http' || kind === 'https') {
    throw new PolicySyntaxError(rule, `remote "${kind}:" checks are not supported`, name);
  }
  const literal = parseLiteral(kind);
  if (literal === null && !IDENT.test(kind)) throw new PolicySyntaxError(rule, `bad credential name "${kind}"`, name);
  return { t: 'generic', kind, left: literal === null ? makeRef(kind) : null, literal, match: parseTemplate(match, rule, name) };
}

/**
 * Recursive descent over the token list:
 *   or  := and ('or' and)*
 *   and := not ('and' not)*
 *   not := 'not' not | atom
 *   atom := '(' or ')' | check
 * which gives oslo.policy's precedence: not > and > or.
 */
class Parser {
  private pos = 0;
  constructor(
    private readonly toks: Token[],
    private readonly text: string,
    private readonly name: string | undefined,
  ) {}

  parse(): Node {
    if (this.toks.length === 0) return ALWAYS;
    const node = this.or();
    if (this.pos < this.toks.length) {
      const t = this.toks[this.pos]!;
      this.fail(t.k === ')' ? 'unbalanced ")"' : `unexpected ${describe(t)}`);
    }
    return node;
  }

  private fail(reason: string): never {
    throw new PolicySyntaxError(this.text, reason, this.name);
  }

  private or(): Node {
    const first = this.and();
    if (this.toks[this.pos]?.k !== 'or') return first;
    const c = [first];
    while (this.toks[this.pos]?.k === 'or') {
      this.pos++;
      c.push(this.and());
    }
    return { t: 'or', c };
  }

  private and(): Node {
    const first = this.not();
    if (this.toks[this.pos]?.k !== 'and') return first;
    const c = [first];
    while (this.toks[this.pos]?.k === 'and') {
      this.pos++;
      c.push(this.not());
    }
    return { t: 'and', c };
  }

  private not(): Node {
    if (this.toks[this.pos]?.k === 'not') {
      this.pos++;
      return { t: 'not', c: this.not() };
    }
    return this.atom();
  }

  private atom(): Node {
    const t = this.toks[this.pos];
    if (t === undefined) this.fail('unexpected end of rule');
    if (t.k === '(') {
      this.pos++;
      if (this.toks[this.pos]?.k === ')') this.fail('empty parentheses');
      const inner = this.or();
      if (this.toks[this.pos]?.k !== ')') this.fail('missing ")"');
      this.pos++;
      return inner;
    }
    if (t.k === 'check') {
      this.pos++;
      return parseCheck(t.text, this.text, this.name);
    }
    this.fail(`unexpected ${describe(t)}`);
  }
}

function describe(t: Token): string {
  return t.k === 'check' ? `"${t.text}"` : `"${t.k}"`;
}

function compile(text: string, name?: string): Node {
  return new Parser(tokenize(text, name), text, name).parse();
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

const hasOwn = Object.prototype.hasOwnProperty;

/** Looks `ref` up as a flat key, then as a nested path; undefined when absent. */
function lookup(obj: Record<string, unknown>, ref: Ref): unknown {
  if (hasOwn.call(obj, ref.flat)) return obj[ref.flat];
  const path = ref.path;
  if (path.length === 1) return undefined;
  let cur: unknown = obj;
  for (let i = 0; i < path.length; i++) {
    if (cur === null || typeof cur !== 'object' || !hasOwn.call(cur, path[i]!)) return undefined;
    cur = (cur as Record<string, unknown>)[path[i]!];
  }
  return cur;
}

/**
 * Renders a scalar the way Python's `str()` would (so `True:%(enabled)s` and
 * `is_admin:True` behave as in oslo.policy); null for values that can never
 * match (absent, null, objects, arrays).
 */
function scalar(v: unknown): string | null {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 'True' : 'False';
    case 'number':
      return Number.isFinite(v) ? String(v) : null;
    case 'bigint':
      return v.toString();
    default:
      return null;
  }
}

/** Substitutes target values into a template; null when a key is missing. */
function render(tpl: Template, target: Record<string, unknown>): string | null {
  if (tpl.constant !== null) return tpl.constant;
  if (tpl.single !== null) return scalar(lookup(target, tpl.single));
  let out = '';
  for (const p of tpl.parts) {
    if (typeof p === 'string') {
      out += p;
    } else {
      const v = scalar(lookup(target, p));
      if (v === null) return null;
      out += v;
    }
  }
  return out;
}

function roleMatches(roles: unknown, lower: string): boolean {
  if (!Array.isArray(roles)) return false;
  for (let i = 0; i < roles.length; i++) {
    const r: unknown = roles[i];
    if (typeof r !== 'string' || r.length !== lower.length) continue;
    if (r === lower || r.toLowerCase() === lower) return true;
  }
  return false;
}

/**
 * Compares a credential value with `match`, descending `path` from index `i`;
 * lists fan out (any element may match), as in oslo.policy.
 */
function credMatches(value: unknown, path: string[], i: number, match: string): boolean {
  if (Array.isArray(value)) {
    for (let j = 0; j < value.length; j++) if (credMatches(value[j], path, i, match)) return true;
    return false;
  }
  if (i === path.length) return scalar(value) === match;
  if (value === null || typeof value !== 'object' || !hasOwn.call(value, path[i]!)) return false;
  return credMatches((value as Record<string, unknown>)[path[i]!], path, i + 1, match);
}

function genericMatches(node: Extract<Node, { t: 'generic' }>, match: string, creds: PolicyCredentials): boolean {
  if (node.literal !== null) return node.literal === match;
  const left = node.left!;
  if (hasOwn.call(creds, left.flat)) return credMatches(creds[left.flat], left.path, left.path.length, match);
  if (left.path.length === 1) return false;
  return credMatches(creds, left.path, 0, match);
}

function evaluate(node: Node, target: Record<string, unknown>, creds: PolicyCredentials, rules: Map<string, Node>): boolean {
  switch (node.t) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'and':
      for (let i = 0; i < node.c.length; i++) if (!evaluate(node.c[i]!, target, creds, rules)) return false;
      return true;
    case 'or':
      for (let i = 0; i < node.c.length; i++) if (evaluate(node.c[i]!, target, creds, rules)) return true;
      return false;
    case 'not':
      return !evaluate(node.c, target, creds, rules);
    case 'rule': {
      const ref = rules.get(node.name);
      return ref === undefined ? false : evaluate(ref, target, creds, rules);
    }
    case 'role': {
      if (node.lower !== null) return roleMatches(creds.roles, node.lower);
      const m = render(node.match, target);
      return m !== null && roleMatches(creds.roles, m.toLowerCase());
    }
    case 'generic': {
      const m = render(node.match, target);
      return m !== null && genericMatches(node, m, creds);
    }
  }
}

// ---------------------------------------------------------------------------
// Rendering and explaining
// ---------------------------------------------------------------------------

function refText(r: Ref): string {
  return `%(${r.flat})s`;
}

function templateText(tpl: Template): string {
  if (tpl.constant !== null) {
    // Quote constants that would not read back as the same plain text.
    return /^[^\s()'"%]+$/.test(tpl.constant) ? tpl.constant : `'${tpl.constant}'`;
  }
  return tpl.parts.map((p) => (typeof p === 'string' ? p.replace(/%/g, '%%') : refText(p))).join('');
}

function nodeText(node: Node, top = true): string {
  switch (node.t) {
    case 'always':
      return '@';
    case 'never':
      return '!';
    case 'rule':
      return `rule:${node.name}`;
    case 'role':
      return `role:${templateText(node.match)}`;
    case 'generic':
      return `${node.kind}:${templateText(node.match)}`;
    case 'not':
      return `not ${nodeText(node.c, false)}`;
    case 'and':
    case 'or': {
      const s = node.c.map((c) => nodeText(c, false)).join(` ${node.t} `);
      return top ? s : `(${s})`;
    }
  }
}

function missingKeys(tpl: Template, target: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const p of tpl.parts) if (typeof p !== 'string' && scalar(lookup(target, p)) === null) out.push(p.flat);
  return out;
}

function credDescription(node: Extract<Node, { t: 'generic' }>, creds: PolicyCredentials): string {
  const left = node.left!;
  const v = hasOwn.call(creds, left.flat) ? creds[left.flat] : left.path.length > 1 ? lookup(creds, left) : undefined;
  return v === undefined ? 'absent' : JSON.stringify(v);
}

function explainNode(
  node: Node,
  target: Record<string, unknown>,
  creds: PolicyCredentials,
  rules: Map<string, Node>,
  via: string[],
  checks: PolicyCheckTrace[],
): PolicyTraceNode {
  const leaf = (kind: PolicyTraceNode['kind'], result: boolean, detail: string): PolicyTraceNode => {
    const text = nodeText(node);
    checks.push({ check: text, result, detail, via: via.slice() });
    return { kind, text, result, detail };
  };
  switch (node.t) {
    case 'always':
      return leaf('always', true, 'always passes');
    case 'never':
      return leaf('never', false, 'never passes');
    case 'and':
    case 'or': {
      const children = node.c.map((c) => explainNode(c, target, creds, rules, via, checks));
      const result = node.t === 'and' ? children.every((c) => c.result) : children.some((c) => c.result);
      return { kind: node.t, text: nodeText(node), result, children };
    }
    case 'not': {
      const child = explainNode(node.c, target, creds, rules, via, checks);
      return { kind: 'not', text: nodeText(node), result: !child.result, children: [child] };
    }
    case 'rule': {
      const ref = rules.get(node.name);
      if (ref === undefined) return leaf('rule', false, `rule "${node.name}" is not defined`);
      via.push(node.name);
      const child = explainNode(ref, target, creds, rules, via, checks);
      via.pop();
      return { kind: 'rule', text: nodeText(node), result: child.result, children: [child] };
    }
    case 'role': {
      const m = node.lower ?? render(node.match, target);
      const roles = Array.isArray(creds.roles) ? creds.roles : [];
      if (m === null) return leaf('role', false, `target key(s) missing: ${missingKeys(node.match, target).join(', ')}`);
      const result = roleMatches(roles, m.toLowerCase());
      return leaf('role', result, `role "${m}" ${result ? 'held' : 'not held'}; roles: [${roles.join(', ')}]`);
    }
    case 'generic': {
      const m = render(node.match, target);
      if (m === null) return leaf('generic', false, `target key(s) missing: ${missingKeys(node.match, target).join(', ')}`);
      const result = genericMatches(node, m, creds);
      const left = node.literal !== null ? `literal ${JSON.stringify(node.literal)}` : `credential ${node.kind}=${credDescription(node, creds)}`;
      return leaf('generic', result, `${left} ${result ? '==' : '!='} ${JSON.stringify(m)}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------

function collectRefs(node: Node, out: string[]): void {
  switch (node.t) {
    case 'rule':
      out.push(node.name);
      return;
    case 'and':
    case 'or':
      for (const c of node.c) collectRefs(c, out);
      return;
    case 'not':
      collectRefs(node.c, out);
      return;
    default:
      return;
  }
}

/** Rejects reference cycles, which would otherwise recurse without end at enforcement time. */
function checkCycles(compiled: Map<string, Node>, texts: Map<string, string>): void {
  const state = new Map<string, 1 | 2>(); // 1 = on the stack, 2 = done
  const stack: string[] = [];
  const visit = (name: string): void => {
    const s = state.get(name);
    if (s === 2) return;
    if (s === 1) {
      const cycle = stack.slice(stack.indexOf(name)).concat(name).join(' -> ');
      throw new PolicySyntaxError(texts.get(name) ?? '', `rule reference cycle ${cycle}`, name);
    }
    const node = compiled.get(name);
    if (node === undefined) return;
    state.set(name, 1);
    stack.push(name);
    const refs: string[] = [];
    collectRefs(node, refs);
    for (const r of refs) visit(r);
    stack.pop();
    state.set(name, 2);
  };
  for (const name of compiled.keys()) visit(name);
}

/**
 * Holds the registered default rules and the operator's overrides, compiled,
 * and answers "may these credentials do this to that target?".
 */
export class PolicyEngine {
  private readonly defaults = new Map<string, { text: string; description?: string }>();
  private overrides = new Map<string, string>();
  private compiled = new Map<string, Node>();
  private texts = new Map<string, string>();
  /** Compiled trees by rule text, so reloading an unchanged policy file parses nothing. */
  private readonly cache = new Map<string, Node>();
  /** Moves whenever the rules in force change (decisions remembered by callers are then stale). */
  generation = 0;

  /**
   * Registers the rules the code enforces. Defaults are validated here so a
   * broken built-in rule fails at startup, not on the first request.
   */
  constructor(defaults: Record<string, PolicyDefault | string>) {
    for (const [name, d] of Object.entries(defaults)) {
      const text = typeof d === 'string' ? d : d.rule;
      if (typeof text !== 'string') throw new PolicySyntaxError(String(text), 'rule must be a string', name);
      this.defaults.set(name, typeof d === 'string' ? { text } : { text, description: d.description });
    }
    this.rebuild(new Map());
  }

  /**
   * Replaces the operator's overrides as a whole (a reload drops overrides
   * no longer in the file). Atomic: if any rule is invalid, this throws and
   * the previously active rules stay in force.
   */
  loadOverrides(rules: Record<string, string>): void {
    const next = new Map<string, string>();
    for (const [name, text] of Object.entries(rules)) {
      if (typeof text !== 'string') throw new PolicySyntaxError(String(text), 'rule must be a string', name);
      next.set(name, text);
    }
    this.rebuild(next);
  }

  private rebuild(overrides: Map<string, string>): void {
    const texts = new Map<string, string>();
    for (const [name, d] of this.defaults) texts.set(name, d.text);
    for (const [name, text] of overrides) texts.set(name, text);
    const compiled = new Map<string, Node>();
    const fresh = new Map<string, Node>();
    for (const [name, text] of texts) {
      let node = this.cache.get(text) ?? fresh.get(text);
      if (node === undefined) {
        node = compile(text, name);
        fresh.set(text, node);
      }
      compiled.set(name, node);
    }
    checkCycles(compiled, texts);
    for (const [text, node] of fresh) this.cache.set(text, node);
    this.overrides = overrides;
    this.texts = texts;
    this.compiled = compiled;
    this.generation++;
  }

  private registered(rule: string): Node {
    if (!this.defaults.has(rule)) throw new PolicyNotRegisteredError(rule);
    return this.compiled.get(rule)!;
  }

  /**
   * The hot-path authorisation decision. Only rules registered as defaults
   * may be enforced (overrides may add helper rules for `rule:` references,
   * but code never enforces a name it did not declare).
   */
  enforce(rule: string, target: Record<string, unknown>, creds: PolicyCredentials): boolean {
    return evaluate(this.registered(rule), target, creds, this.compiled);
  }

  /**
   * Evaluates a rule like `enforce`, but without short-circuiting and
   * recording every check with its inputs, so an admin can see exactly why a
   * request got a 403.
   */
  explain(rule: string, target: Record<string, unknown>, creds: PolicyCredentials): PolicyTrace {
    const node = this.registered(rule);
    const checks: PolicyCheckTrace[] = [];
    const tree = explainNode(node, target, creds, this.compiled, [rule], checks);
    return { rule, expression: this.texts.get(rule)!, result: tree.result, tree, checks };
  }

  /** The effective rule set (defaults with overrides applied), e.g. to dump a sample policy file. */
  rules(): Record<string, string> {
    return Object.fromEntries(this.texts);
  }

  /** The description a default was registered with, for generated policy docs. */
  description(rule: string): string | undefined {
    return this.defaults.get(rule)?.description;
  }

  /** Whether `rule` is currently overridden by the operator. */
  isOverridden(rule: string): boolean {
    return this.overrides.has(rule);
  }
}

/**
 * Renders a trace as an indented tree, one check per line, for logs and
 * admin tooling where a JSON blob would be unreadable.
 */
export function formatPolicyTrace(trace: PolicyTrace): string {
  const lines = [`${trace.rule}: ${trace.result ? 'ALLOW' : 'DENY'}  (${trace.expression || '""'})`];
  const walk = (n: PolicyTraceNode, depth: number): void => {
    const pad = '  '.repeat(depth);
    const mark = n.result ? '+' : '-';
    lines.push(`${pad}${mark} ${n.text}${n.detail ? `  [${n.detail}]` : ''}`);
    for (const c of n.children ?? []) walk(c, depth + 1);
  };
  walk(trace.tree, 1);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------
// Policy files
// ---------------------------------------------------------------------------

/**
 * oslo.policy's legacy list syntax: the outer list is an "or", each inner
 * list an "and" of single checks; `[]` allows everything.
 */
function fromListSyntax(name: string, value: unknown[]): string {
  if (value.length === 0) return '';
  const alternatives: string[] = [];
  for (const inner of value) {
    const items = typeof inner === 'string' ? [inner] : inner;
    if (!Array.isArray(items) || !items.every((c): c is string => typeof c === 'string')) {
      throw new PolicySyntaxError(JSON.stringify(value), 'list rules must be lists of lists of strings', name);
    }
    if (items.length === 0) continue;
    alternatives.push(`(${items.map((c) => `(${c})`).join(' and ')})`);
  }
  return alternatives.length === 0 ? '!' : alternatives.join(' or ');
}

/**
 * Reads an operator's policy override file (YAML, or JSON as older
 * deployments use). A missing file means "no overrides", so a fresh install
 * needs no policy file at all. Rules are not compiled here; hand the result
 * to `PolicyEngine.loadOverrides`, which validates it atomically.
 */
export async function loadPolicyFile(path: string): Promise<Record<string, string>> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  let doc: unknown;
  const trimmed = raw.trimStart();
  if (trimmed.startsWith('{') || path.endsWith('.json')) {
    try {
      doc = JSON.parse(raw);
    } catch {
      doc = parseYaml(raw);
    }
  } else {
    doc = parseYaml(raw);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: a policy file must be a mapping of rule names to rules`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value)) out[name] = fromListSyntax(name, value);
    else throw new Error(`${path}: rule "${name}" must be a string (use "" to allow everyone)`);
  }
  return out;
}
