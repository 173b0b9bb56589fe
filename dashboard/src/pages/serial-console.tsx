/**
 * An interactive serial console in the browser: the websocket URL from the
 * compute API (one-time token) carries the guest's serial port both ways.
 * The terminal is deliberately minimal — a line buffer that understands
 * carriage return, newline, backspace and tab and drops other escape
 * sequences (colours, cursor moves) — which is what a serial login and shell
 * need; a full VT emulator would triple the page's size.
 */
import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { errorText } from '../api/client.js';
import { compute } from '../api/compute.js';
import { ErrorBox } from '../ui/kit.js';

const MAX_LINES = 2000;

export class LineTerminal {
  lines: string[] = [''];
  col = 0;
  private esc = '';

  write(text: string): void {
    for (const ch of text) {
      if (this.esc) {
        this.esc += ch;
        // CSI ends with a letter (or ~); OSC ends with BEL; two-char escapes end at once.
        if ((this.esc.startsWith('\x1b[') && /[@-~]/.test(ch) && this.esc.length > 2) || (this.esc.startsWith('\x1b]') && ch === '\x07') || (this.esc.length === 2 && !'[]'.includes(ch)) || this.esc.length > 64)
          this.esc = '';
        continue;
      }
      const last = this.lines.length - 1;
      switch (ch) {
        case '\x1b':
          this.esc = ch;
          break;
        case '\r':
          this.col = 0;
          break;
        case '\n':
          this.lines.push('');
          this.col = 0;
          if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
          break;
        case '\b':
          this.col = Math.max(0, this.col - 1);
          break;
        case '\t':
          this.put(' '.repeat(8 - (this.col % 8)));
          break;
        case '\x07':
          break;
        default:
          if (ch < ' ' || ch === '\x7f') break;
          this.put(ch);
      }
      void last;
    }
  }

  private put(s: string): void {
    const i = this.lines.length - 1;
    const line = this.lines[i]!.padEnd(this.col, ' ');
    this.lines[i] = line.slice(0, this.col) + s + line.slice(this.col + s.length);
    this.col += s.length;
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** Bytes a key press sends to a serial terminal. */
function keyBytes(e: KeyboardEvent): string | null {
  if (e.ctrlKey && !e.altKey && e.key.length === 1) {
    const c = e.key.toUpperCase().charCodeAt(0);
    if (c >= 64 && c <= 95) return String.fromCharCode(c - 64);
    return null;
  }
  const map: Record<string, string> = {
    Enter: '\r',
    Backspace: '\x7f',
    Tab: '\t',
    Escape: '\x1b',
    ArrowUp: '\x1b[A',
    ArrowDown: '\x1b[B',
    ArrowRight: '\x1b[C',
    ArrowLeft: '\x1b[D',
    Home: '\x1b[H',
    End: '\x1b[F',
    Delete: '\x1b[3~',
  };
  if (map[e.key]) return map[e.key]!;
  if (e.key.length === 1 && !e.metaKey) return e.key;
  return null;
}

export function SerialConsole({ serverId }: { serverId: string }) {
  const [state, setState] = useState<'connecting' | 'open' | 'closed'>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState('');
  const [attempt, setAttempt] = useState(0);
  const ws = useRef<WebSocket | null>(null);
  const pre = useRef<HTMLPreElement>(null);

  useEffect(() => {
    let closed = false;
    const term = new LineTerminal();
    const decoder = new TextDecoder();
    let pending = false;
    setState('connecting');
    setError(null);
    setText('');
    (async () => {
      try {
        const url = await compute.serialConsole(serverId);
        if (closed) return;
        // The URL is built from the cloud's public URL; reach it on this page's host.
        const u = new URL(url);
        const target = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${u.pathname}${u.search}`;
        const sock = new WebSocket(target);
        sock.binaryType = 'arraybuffer';
        ws.current = sock;
        sock.onopen = () => {
          setState('open');
          pre.current?.focus();
          // A newline wakes the guest's getty so a prompt shows.
          sock.send('\r');
        };
        sock.onmessage = (m) => {
          term.write(typeof m.data === 'string' ? m.data : decoder.decode(new Uint8Array(m.data as ArrayBuffer), { stream: true }));
          if (!pending) {
            pending = true;
            requestAnimationFrame(() => {
              pending = false;
              setText(term.text());
            });
          }
        };
        sock.onclose = (ev) => {
          setState('closed');
          if (!closed && ev.code !== 1000 && ev.code !== 1005) setError(`The console connection closed${ev.reason ? `: ${ev.reason}` : ''}.`);
        };
        sock.onerror = () => setError('The console connection failed.');
      } catch (e) {
        if (!closed) {
          setError(errorText(e));
          setState('closed');
        }
      }
    })();
    return () => {
      closed = true;
      ws.current?.close(1000);
      ws.current = null;
    };
  }, [serverId, attempt]);

  useEffect(() => {
    if (pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);

  const send = (s: string) => {
    if (ws.current?.readyState === WebSocket.OPEN) ws.current.send(new TextEncoder().encode(s));
  };

  return (
    <section aria-label="Interactive serial console">
      <div className="toolbar">
        <span role="status" className="muted">
          {state === 'connecting' ? 'Connecting…' : state === 'open' ? 'Connected. Click the console (or focus it with Tab) and type.' : 'Disconnected.'}
        </span>
        {state === 'closed' && (
          <button type="button" onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        )}
        {state === 'open' && (
          <button type="button" onClick={() => send('\x03')}>
            Send Ctrl+C
          </button>
        )}
      </div>
      <ErrorBox error={error} />
      <pre
        ref={pre}
        className="console-log terminal"
        tabIndex={0}
        role="log"
        aria-label="Serial console; keys typed here go to the instance. Press Shift+Tab to leave."
        data-testid="serial-console"
        onKeyDown={(e) => {
          // Shift+Tab leaves the terminal so keyboard users are never trapped.
          if (e.key === 'Tab' && e.shiftKey) return;
          const b = keyBytes(e);
          if (b === null) return;
          e.preventDefault();
          send(b);
        }}
        onPaste={(e) => {
          e.preventDefault();
          send(e.clipboardData.getData('text').replace(/\r?\n/g, '\r'));
        }}
      >
        {text}
        <span className="cursor" aria-hidden="true">
          ▌
        </span>
      </pre>
    </section>
  );
}
