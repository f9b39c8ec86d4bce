// systemd's readiness protocol (sd_notify(3)): "READY=1", "RELOADING=1", "STOPPING=1" and
// "STATUS=..." as one datagram each to the unix socket named by $NOTIFY_SOCKET (a path, or
// '@name' in the abstract namespace). Type=notify units wait for READY=1 before they count as
// started. Without NOTIFY_SOCKET (not under systemd) every call does nothing.

import type { DatagramSend } from './log';

export interface SdNotifier {
  /** Whether NOTIFY_SOCKET was set. */
  readonly active: boolean;
  /** Sends "KEY=value" lines; returns an error text when the socket did not take them. */
  notify(state: string): string | null;
}

export function sdNotifier(env: NodeJS.ProcessEnv, send: DatagramSend): SdNotifier {
  const path = env['NOTIFY_SOCKET'];
  // sd_notify accepts only absolute paths and abstract names.
  if (!path || (path[0] !== '/' && path[0] !== '@')) return { active: false, notify: () => null };
  return {
    active: true,
    notify(state) {
      try {
        return send(path, Buffer.from(state)) ? null : `${path}: would block`;
      } catch (err) {
        return `${path}: ${(err as Error).message}`;
      }
    },
  };
}
