// run-tests lane: in-process
/**
 * How the stress tool reads a payment's error answer, with the statuses the node's own error table gives:
 * a routed payment aborted on the payer's wait (`path_timeout`) is failed, nothing moved; `timeout`
 * (outcome unknown) stays unknown, to be asked again by its key. A real HTTP server answers as the node does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../src/cli/client.ts';
import { HTTP_STATUS, type ErrorCode } from '../src/node/errors.ts';
import { sendPayment } from '../src/stress/pay.ts';

test('stress: 409 path_timeout counts failed, 504 timeout unknown', async () => {
  let code: ErrorCode = 'path_timeout';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(HTTP_STATUS[code], { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code, message: 'as the node answers it' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const api = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'token');
    const body = { dest: 'carol', amount_sat: 1_000, idempotency_key: 'k' };
    assert.deepEqual(await sendPayment(api, body), { kind: 'failed', code: 'path_timeout' });
    code = 'timeout';
    assert.deepEqual(await sendPayment(api, body), { kind: 'unknown', code: 'timeout' });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
