/**
 * Opening a channel between two nodes through their REST APIs, as the local network launcher and the
 * benchmark both do: attest the peer, open with the opener's deposits, wait until the peer's node sees
 * the channel, then add the peer's deposits from its side.
 */
import { ApiClient, CliError } from './client.ts';

export interface ChannelEnd {
  api: ApiClient;
  nodeId: string;
  p2p: string;
}

/** Resolves with the channel id. @throws CliError with the API's code and message. */
export async function openChannelBetween(
  a: ChannelEnd,
  b: ChannelEnd,
  aDeposits: string[],
  bDeposits: string[],
  timeoutMs = 15_000,
): Promise<string> {
  await a.api.request('POST', '/v1/peers', { address: b.p2p });
  const { channel_id: id } = await a.api.request<{ channel_id: string }>('POST', '/v1/channels', {
    peer_id: b.nodeId,
    deposit_ids: aDeposits,
  });
  const start = Date.now();
  for (;;) {
    try {
      await b.api.request('GET', `/v1/channels/${id}`);
      break;
    } catch {
      if (Date.now() - start > timeoutMs) throw new CliError(`timed out waiting for the peer to see channel ${id}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  for (const d of bDeposits) await b.api.request('POST', `/v1/channels/${id}/deposits`, { deposit_id: d });
  return id;
}
