/**
 * "Verified" on the dashboard means what `teechain attest` means: the node's fresh quote, for a nonce
 * chosen here, is signed by the network's attestation root, reports the measurement of the treasury
 * program built from this checkout, is not a debug enclave, and binds the node id that network.json names.
 */
import { randomBytes } from 'node:crypto';
import { reportDataFor, verifyQuote } from '../../enclave-sim/attestation.ts';
import type { AttestationStatus } from './protocol.ts';
import type { NodeApi } from './node-api.ts';

export interface AttestationPolicy {
  /** The attestation service's public key (the network's attestation.key). */
  trustAnchor: string;
  /** Measurements of the treasury program the dashboard trusts (measureBundle of this checkout's program). */
  allowedMeasurements: string[];
}

export async function checkAttestation(api: NodeApi, policy: AttestationPolicy): Promise<AttestationStatus> {
  const nonce = randomBytes(32).toString('hex');
  const r = await api.request<{ node_id?: string; quote?: unknown; error?: { code: string; message: string } }>(
    'GET',
    `/v1/attestation?nonce=${nonce}`,
    undefined,
    10_000,
  );
  const checked_at = Date.now();
  if (r.status !== 200) {
    return {
      verified: false,
      measurement: null,
      detail: r.body?.error ? `${r.body.error.code}: ${r.body.error.message}` : `HTTP ${r.status}`,
      checked_at,
    };
  }
  const measurement = (r.body.quote as { measurement?: unknown } | undefined)?.measurement;
  const shown = typeof measurement === 'string' ? measurement : null;
  if (r.body.node_id !== api.node.nodeId) {
    return {
      verified: false,
      measurement: shown,
      detail: `the quote is for node ${String(r.body.node_id)}, not the ${api.node.nodeId} network.json names`,
      checked_at,
    };
  }
  try {
    const v = verifyQuote(r.body.quote, {
      trustAnchor: policy.trustAnchor,
      allowedMeasurements: policy.allowedMeasurements,
      expectedNonce: nonce,
      expectedReportData: reportDataFor(Buffer.from(api.node.nodeId, 'hex')),
    });
    return {
      verified: true,
      measurement: v.measurement,
      detail: 'fresh quote: attestation root, allowed measurement, node id bound',
      checked_at,
    };
  } catch (err) {
    const code = (err as { code?: string }).code;
    return {
      verified: false,
      measurement: shown,
      detail: `${code ?? 'invalid'}: ${(err as Error).message}`,
      checked_at,
    };
  }
}
