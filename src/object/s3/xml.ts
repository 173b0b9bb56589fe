import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error } from './errors.js';

/** The namespace of every S3 response document. */
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/**
 * Escapes text for an XML element. Characters XML 1.0 cannot carry at all
 * (most C0 controls) are written as character references; clients that care
 * ask for `encoding-type=url` instead.
 */
export function esc(s: string): string {
  return s.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`;
    }
  });
}

/** `<name>text</name>` with the text escaped; nothing for undefined. */
export function el(name: string, value: string | number | boolean | undefined | null): string {
  if (value === undefined || value === null) return '';
  return `<${name}>${esc(String(value))}</${name}>`;
}

/** A whole response document: declaration, root element in the S3 namespace. */
export function doc(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NS}">${inner}</${root}>`;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  // Entities are decoded in one pass by textOf (the parser would leave
  // numeric references alone and decode &amp;#13; twice if combined).
  processEntities: false,
  isArray: (name) => name === 'Object' || name === 'Part',
});

/** A parsed element: text, or children by name (repeated `Object`/`Part` are arrays). */
export type XmlNode = string | { [name: string]: XmlNode | XmlNode[] };

/**
 * Parses a request document (CreateBucketConfiguration, Delete,
 * CompleteMultipartUpload). Anything that is not well-formed XML with the
 * expected root element is `MalformedXML`; DTDs are refused outright (no
 * entity expansion from client input).
 */
export function parseRequestXml(body: Buffer, root: string): Record<string, XmlNode | XmlNode[]> {
  const text = body.toString('utf8');
  const malformed = () =>
    new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformed();
  if (XMLValidator.validate(text) !== true) throw malformed();
  let parsed: Record<string, unknown>;
  try {
    parsed = parser.parse(text) as Record<string, unknown>;
  } catch {
    throw malformed();
  }
  const top = parsed[root];
  if (top === '') return {};
  if (top === undefined || typeof top !== 'object' || top === null || Array.isArray(top)) throw malformed();
  return top as Record<string, XmlNode | XmlNode[]>;
}

/** The text of a child element, or undefined; an element with children is malformed. */
export function textOf(node: XmlNode | XmlNode[] | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (typeof node === 'string') return decodeEntities(node);
  throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
}

/** Children named `name` as an array of element objects (text-only children are malformed). */
export function childrenOf(node: Record<string, XmlNode | XmlNode[]>, name: string): Array<Record<string, XmlNode | XmlNode[]>> {
  const v = node[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => {
    if (x === '') return {};
    if (typeof x !== 'object' || x === null || Array.isArray(x)) {
      throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    }
    return x as Record<string, XmlNode | XmlNode[]>;
  });
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, ent: string) => {
    if (ent[0] !== '#') return NAMED[ent]!;
    const cp = ent[1] === 'x' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
    if (!(cp >= 0 && cp <= 0x10ffff)) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    return String.fromCodePoint(cp);
  });
}
