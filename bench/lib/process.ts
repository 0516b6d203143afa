/** Child processes of the bench scripts. */
import type { ChildProcess } from 'node:child_process';

/** SIGTERM and wait for the exit; at once if it has already exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
