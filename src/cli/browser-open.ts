import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A page on disk that sends a browser on to a URL, and the means to remove it. */
export interface LaunchFile {
  /** The file's path: the only thing a browser opener is given. */
  path: string;
  remove(): Promise<void>;
}

/** The platform's opener: it takes a file path as well as a URL. */
export function defaultOpener(platform: NodeJS.Platform = process.platform): string {
  return platform === 'darwin' ? 'open' : platform === 'win32' ? 'explorer' : 'xdg-open';
}

/** `&`, `<`, `>`, `"` and `'` as entities, so a URL is safe inside an attribute and as text. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A page that sends the browser on to `url` at once: a meta refresh and, for a browser that
 * ignores it, a link. No script: nothing in it needs to run, and a strict CSP may apply.
 */
export function redirectPage(url: string): string {
  const href = escapeHtml(url);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="refresh" content="0;url=${href}">`,
    '<meta name="referrer" content="no-referrer">',
    '<title>meshid dashboard</title></head>',
    `<body><p><a href="${href}">Open the meshid dashboard</a></p></body></html>`,
    '',
  ].join('\n');
}

/**
 * The directory a launch file goes in: the user's runtime directory (XDG_RUNTIME_DIR, 0700
 * and the user's own on systemd machines) when there is one, the temp directory otherwise.
 */
async function launchBase(env: NodeJS.ProcessEnv): Promise<string> {
  const runtime = env['XDG_RUNTIME_DIR'];
  if (runtime && (await stat(runtime).then((s) => s.isDirectory(), () => false))) return runtime;
  return tmpdir();
}

/**
 * Writes the launch page for `url` into a fresh directory (mkdtemp makes it 0700) as a 0600
 * file. A browser opener then gets the file's path, never the URL: a command line is world
 * readable in /proc, and the URL carries a one-time handoff code. (Jupyter opens its token
 * the same way.) The file goes when `remove` runs, or when the process exits at the latest.
 */
export async function writeLaunchFile(url: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<LaunchFile> {
  const dir = await mkdtemp(join(await launchBase(options.env ?? process.env), 'meshid-dashboard-'));
  const path = join(dir, 'open.html');
  // Any exit, even one no finally block sees, takes the page with it.
  const onExit = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', onExit);
  await writeFile(path, redirectPage(url), { mode: 0o600, flag: 'wx' });
  return {
    path,
    async remove() {
      process.off('exit', onExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts the opener on a file and lets it go; `onFailure` runs when it cannot start (no
 * xdg-open on a server, say). Its output is discarded: openers print noise.
 */
export function openFile(path: string, onFailure: (opener: string) => void, opener: string = defaultOpener()): void {
  spawn(opener, [path], { stdio: 'ignore', detached: true })
    .on('error', () => onFailure(opener))
    .unref();
}
