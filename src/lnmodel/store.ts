/**
 * A party's durable files: `keys.json` (its secrets and the open/accept messages, written once when the
 * channel opens) and `channel` (the channel snapshot, written after every change with the same
 * crash-safe write the treasury's sealed store uses: a two-slot file, one write + fdatasync; see
 * enclave-sim/durable-file.ts SlotFile). Same durability on both sides of the comparison.
 */
import { join } from 'node:path';
import { SlotFile, writeFileDurably } from '../../enclave-sim/durable-file.ts';
import type { ChannelSnapshot } from './channel.ts';
import type { ChannelSecrets } from './keys.ts';
import { decodeJson, encodeJson, type AcceptChannel, type OpenChannel } from './wire.ts';

export const CHANNEL_FILE = 'channel';
export const KEYS_FILE = 'keys.json';

export interface KeysFile {
  secrets: ChannelSecrets;
  open: OpenChannel;
  accept: AcceptChannel;
}

/** Encodes now (so later in-memory changes cannot leak into the write), then replaces the file durably. */
export async function saveSnapshot(dir: string, snap: ChannelSnapshot): Promise<void> {
  const bytes = encodeJson(snap);
  await (await slotsFor(dir)).write(bytes);
}

/** Reads the latest snapshot (through a fresh handle, so another process's writes are seen). */
export async function loadSnapshot(dir: string): Promise<ChannelSnapshot | null> {
  const slots = await SlotFile.open(join(dir, CHANNEL_FILE));
  try {
    const bytes = await slots.read();
    return bytes ? (decodeJson(bytes) as ChannelSnapshot) : null;
  } finally {
    await slots.close();
  }
}

const open = new Map<string, Promise<SlotFile>>();

/** The snapshot's slot file, opened once per party and kept open (it is written on every update). */
function slotsFor(dir: string): Promise<SlotFile> {
  let f = open.get(dir);
  if (!f) {
    f = SlotFile.open(join(dir, CHANNEL_FILE));
    open.set(dir, f);
  }
  return f;
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
    local: {
      openerSat: s.local.spec.openerSat,
      acceptorSat: s.local.spec.acceptorSat,
      htlcs: s.local.spec.htlcs.length,
    },
    remote: {
      openerSat: s.remote.spec.openerSat,
      acceptorSat: s.remote.spec.acceptorSat,
      htlcs: s.remote.spec.htlcs.length,
    },
    awaitingRevocation: s.awaitingRevocation,
    pendingUpdates: s.pendingForLocal.length + s.pendingForRemote.length,
  };
}
