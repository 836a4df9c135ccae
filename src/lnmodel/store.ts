/**
 * A party's durable files: `keys.json` (its secrets and the open/accept messages, written once when the
 * channel opens) and `channel.json` (the channel snapshot, replaced after every change with the same
 * crash-safe write the enclave host uses: temp file, fsync, rename, directory fsync).
 */
import { join } from 'node:path';
import { readFileIfExists, writeFileDurably } from '../../enclave-sim/durable-file';
import type { ChannelSnapshot } from './channel';
import type { ChannelSecrets } from './keys';
import { decodeJson, encodeJson, type AcceptChannel, type OpenChannel } from './wire';

export const CHANNEL_FILE = 'channel.json';
export const KEYS_FILE = 'keys.json';

export interface KeysFile {
  secrets: ChannelSecrets;
  open: OpenChannel;
  accept: AcceptChannel;
}

/** Encodes now (so later in-memory changes cannot leak into the write), then replaces the file durably. */
export function saveSnapshot(dir: string, snap: ChannelSnapshot): Promise<void> {
  return writeFileDurably(join(dir, CHANNEL_FILE), encodeJson(snap));
}

export async function loadSnapshot(dir: string): Promise<ChannelSnapshot | null> {
  const bytes = await readFileIfExists(join(dir, CHANNEL_FILE));
  return bytes ? (decodeJson(bytes) as ChannelSnapshot) : null;
}

export function saveKeys(dir: string, keys: KeysFile): Promise<void> {
  return writeFileDurably(join(dir, KEYS_FILE), encodeJson(keys));
}

/** The figures a check needs from a snapshot. */
export interface SnapshotSummary {
  side: ChannelSnapshot['side'];
  mode: ChannelSnapshot['mode'];
  localIndex: number;
  remoteIndex: number;
  /** Balances in our own latest commitment, and in the counterparty's latest one. */
  local: { openerSat: bigint; acceptorSat: bigint; htlcs: number };
  remote: { openerSat: bigint; acceptorSat: bigint; htlcs: number };
  awaitingRevocation: boolean;
  pendingUpdates: number;
}

export function summarizeSnapshot(s: ChannelSnapshot): SnapshotSummary {
  return {
    side: s.side,
    mode: s.mode,
    localIndex: s.local.index,
    remoteIndex: s.remote.index,
    local: { openerSat: s.local.spec.openerSat, acceptorSat: s.local.spec.acceptorSat, htlcs: s.local.spec.htlcs.length },
    remote: { openerSat: s.remote.spec.openerSat, acceptorSat: s.remote.spec.acceptorSat, htlcs: s.remote.spec.htlcs.length },
    awaitingRevocation: s.awaitingRevocation,
    pendingUpdates: s.pendingForLocal.length + s.pendingForRemote.length,
  };
}
