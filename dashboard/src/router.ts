/** Hash routes (#/compute/instances/<id>): static hosting needs no server-side fallback. */
import { useEffect, useState } from 'react';

export function currentPath(): string {
  return location.hash.replace(/^#\/?/, '').replace(/\/+$/, '');
}

export function useHashPath(): string {
  const [path, setPath] = useState(currentPath);
  useEffect(() => {
    const on = () => setPath(currentPath());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return path;
}

export function go(path: string): void {
  location.hash = `#/${path}`;
}

export const href = (path: string) => `#/${path}`;
