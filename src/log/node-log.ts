/**
 * What a node logs about its own work, as an observer of the host (src/node/observer.ts). Peers and
 * channels changing state are `info`; single payments are `debug` (thousands a second under load).
 */
import type { NodeObserver } from '../node/observer.ts';
import type { Logger } from './logger.ts';

export function logObserver(log: Logger): NodeObserver {
  return {
    enclaveEvent(e) {
      switch (e.type) {
        case 'peer_connected':
          log.info({ peer_id: e.peer_id, conn: e.conn }, 'peer connected and attested');
          return;
        case 'peer_disconnected':
          log.warn({ peer_id: e.peer_id, conn: e.conn, reason: e.reason }, 'peer disconnected');
          return;
        case 'channel_updated':
          log.info({ channel_id: e.channel_id, status: e.status }, 'channel updated');
          return;
        case 'channel_settled':
          log.info({ channel_id: e.channel_id, txid: e.txid, by: e.by }, 'channel settled');
          return;
        case 'pay_acked':
          log.trace({ channel_id: e.channel_id, total: e.total }, 'payments acknowledged');
          return;
        case 'pay_received':
          log.debug({ channel_id: e.channel_id, count: e.amounts.length }, 'payments received');
          return;
        case 'committee_view':
          log.warn(
            {
              epoch: e.epoch,
              primary: e.primary,
              index: e.index,
              role: e.members[e.index]?.node_id === e.primary ? 'primary' : 'backup',
            },
            'committee view changed',
          );
          return;
        case 'payment_unproven':
          // The peer is a committee whose backups have not (yet) proven this total: nothing was credited.
          log.warn(
            { channel_id: e.channel_id, total: e.total, reason: e.reason },
            "a paid total without its committee's proof: not credited",
          );
          return;
        case 'committee_update_refused':
          // A missed delta base is caught up with a full snapshot at once; any other refusal holds replication.
          (e.code === 'base_mismatch' ? log.info.bind(log) : log.error.bind(log))(
            { member: e.member, seq: e.seq, code: e.code },
            'a committee member refused a replication update',
          );
          return;
        case 'committee_join_refused':
          log.error(
            { code: e.code },
            'the primary refused to admit this backup (give it an unused join token: --join-token-file)',
          );
          return;
        case 'ocall_failed':
          log.error(
            { ocall: e.ocall, failures: e.failures, err: e.message },
            'the enclave could not send a one-way ocall',
          );
          return;
      }
    },
    paymentResolved(p) {
      if (p.status === 'failed')
        log.debug(
          { payment_id: p.payment_id, channel_id: p.channel_id, amount_sat: p.amount_sat, code: p.failure_code },
          'payment failed',
        );
      else
        log.debug(
          {
            payment_id: p.payment_id,
            channel_id: p.channel_id,
            amount_sat: p.amount_sat,
            ms: (p.resolved_at ?? p.created_at) - p.created_at,
          },
          'payment succeeded',
        );
    },
    ocallFailed(name, message) {
      log.error({ ocall: name, err: message }, 'host handler of a one-way ocall failed');
    },
    backgroundFailed(task, message, detail) {
      log.warn({ ...detail, task, err: message }, 'background task failed');
    },
    sealedWrite(seconds, bytes, ok) {
      if (!ok) log.error({ bytes }, 'sealed-state write failed');
      else log.trace({ ms: seconds * 1000, bytes }, 'sealed state written');
    },
  };
}
