/**
 * Reloading a file a node reads at start (auth file, cluster key file, TLS
 * files) when it changes or on SIGHUP, as operators expect of a daemon. The
 * parent dir is watched, not the file: editors and config tools replace a
 * file by renaming a new one over it, which a watch on the old inode misses.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Changes closer together than this make one reload (an editor's save is several events). */
export const RELOAD_DEBOUNCE_MS = 100;

/**
 * Calls `onChange` (debounced) when the file at `path` is written, replaced,
 * created or removed. Returns the function that stops watching. When the
 * dir cannot be watched, `onError` is told and only SIGHUP reloads.
 */
export function watchFile(path: string, onChange: () => void, onError: (error: unknown) => void): () => void {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      // Some platforms do not say which file changed: reload then too.
      if (file !== null && file !== name) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        onChange();
      }, RELOAD_DEBOUNCE_MS);
      timer.unref();
    });
    watcher.on('error', onError);
  } catch (error) {
    onError(error);
  }
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    watcher?.close();
  };
}

/** Calls `onHangup` on every SIGHUP (which would otherwise end the process). Returns the function that stops it. */
export function onSighup(onHangup: () => void): () => void {
  const listener = (): void => onHangup();
  process.on('SIGHUP', listener);
  return () => {
    process.off('SIGHUP', listener);
  };
}

export interface Reloader {
  /** Runs a reload now (or right after the one running); resolves when done. Never rejects. */
  reload(reason: string): Promise<void>;
  /** Stops watching and listening for SIGHUP. */
  close(): void;
}

/**
 * Runs `run(reason)` when one of `paths` changes and on SIGHUP, one run at a
 * time: a change during a run makes one more run after it. `run` must not
 * throw (it logs what went wrong and keeps what is in force).
 */
export function reloadOnChange(paths: readonly string[], run: (reason: string) => Promise<void>, onWatchError: (error: unknown) => void): Reloader {
  let running: Promise<void> | undefined;
  let again: string | undefined;
  const reload = (reason: string): Promise<void> => {
    if (running !== undefined) {
      again = reason;
      return running;
    }
    running = (async () => {
      let next: string | undefined = reason;
      while (next !== undefined) {
        again = undefined;
        await run(next);
        next = again;
      }
      running = undefined;
    })();
    return running;
  };
  const stops = [...paths.map((path) => watchFile(path, () => void reload('the file changed'), onWatchError)), onSighup(() => void reload('SIGHUP'))];
  return {
    reload,
    close() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}
