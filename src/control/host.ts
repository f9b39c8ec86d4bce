// What the daemon offers the subsystems it hosts (the health-check glue in health.ts, the VRRP
// glue in vrrp.ts), so they depend on this narrow interface and not on the Daemon class: the
// daemon imports them, they never import it back, and none of them reaches into its fields.

import type { ModelConfig, ServiceModel } from '../service/model';
import type { LoadedConfig } from './config-loader';
import type { Logger } from '../runtime/log';

export interface DaemonHost {
  /** The live service table. */
  readonly model: ServiceModel;
  /** The configuration last loaded with -f (null without -f, and until the first load). */
  currentConfig(): LoadedConfig | null;
  /** Hears of every (re)load of the file; throwing refuses it (nothing changes anywhere). */
  onConfig(listener: (loaded: LoadedConfig) => void): void;
  /** Work to run on SIGTERM/SIGINT, newest first; a failure is logged, not fatal. */
  onStop(name: string, run: () => void | Promise<void>): void;
  /** Turns a configured table into the live one (the health checkers hold servers down). */
  setLiveView(view: (configured: ModelConfig) => ModelConfig): void;
  /** Re-applies the data plane (what it forwards depends on VRRP's state); no-op without one. */
  reapplyDataPlane(): void;
}

export type { Logger };
