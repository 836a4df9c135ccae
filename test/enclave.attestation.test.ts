/** Quotes: a good one verifies; each kind of bad one is refused with its own code. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AttestationError,
  AttestationService,
  FileSealedStore,
  Platform,
  verifyQuote,
  type EnclaveHandle,
  type Quote,
  type VerifyQuoteOptions,
} from '../enclave-sim/index.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import {
  EXAMPLE_ENTRY,
  exampleInterface,
  exampleOcalls,
  exampleReportData,
  tempDir,
  type ExampleInterface,
} from './fixtures/example-enclave/harness.ts';

let dir: string;
let cleanup: () => Promise<void>;
let attestation: AttestationService;
let enclave: EnclaveHandle<ExampleInterface>;
let debugEnclave: EnclaveHandle<ExampleInterface>;

before(async () => {
  ({ dir, cleanup } = await tempDir('attestation'));
  attestation = AttestationService.create();
  const platform = await Platform.open({ dir: join(dir, 'platform'), attestation });
  const launch = (debug: boolean, instance: string) =>
    platform.launch({
      entry: EXAMPLE_ENTRY,
      iface: exampleInterface,
      ocalls: exampleOcalls(),
      debug,
      instance,
      store: new FileSealedStore(join(dir, `${instance}.sealed`)),
    });
  enclave = await launch(false, 'prod');
  debugEnclave = await launch(true, 'debug');
});
after(async () => {
  await enclave?.terminate();
  await debugEnclave?.terminate();
  await cleanup();
});

/** A fresh quote from `e` for a fresh nonce, round-tripped through JSON as it would be over the network. */
async function freshQuote(e: EnclaveHandle<ExampleInterface>) {
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const { quote, publicKey } = await e.ecall('quote', { nonce });
  return { quote: JSON.parse(JSON.stringify(quote)) as Quote, nonce, publicKey };
}

function options(over: Partial<VerifyQuoteOptions> & Pick<VerifyQuoteOptions, 'expectedNonce'>): VerifyQuoteOptions {
  return { trustAnchor: attestation.trustAnchor, allowedMeasurements: [enclave.measurement], ...over };
}

function refusedWith(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

test('a quote verifies and binds the enclave key', async () => {
  const { quote, nonce, publicKey } = await freshQuote(enclave);
  const verified = verifyQuote(
    quote,
    options({ expectedNonce: nonce, expectedReportData: exampleReportData(publicKey) }),
  );
  assert.equal(verified.measurement, enclave.measurement);
  assert.equal(verified.debug, false);
  // Hex option forms are accepted too.
  verifyQuote(
    quote,
    options({
      expectedNonce: Buffer.from(nonce).toString('hex').toUpperCase(),
      allowedMeasurements: [enclave.measurement.toUpperCase()],
    }),
  );
});

test('a quote for a measurement not on the allow-list is refused', async () => {
  const { quote, nonce } = await freshQuote(enclave);
  assert.throws(
    () => verifyQuote(quote, options({ expectedNonce: nonce, allowedMeasurements: ['ab'.repeat(32)] })),
    refusedWith('measurement_not_allowed'),
  );
});

test('a quote whose measurement was changed no longer verifies', async () => {
  const { quote, nonce } = await freshQuote(enclave);
  const forged = { ...quote, measurement: 'ab'.repeat(32) };
  assert.throws(
    () => verifyQuote(forged, options({ expectedNonce: nonce, allowedMeasurements: [forged.measurement] })),
    refusedWith('bad_signature'),
  );
});

test('a replayed quote (stale nonce) is refused', async () => {
  const old = await freshQuote(enclave);
  const now = crypto.getRandomValues(new Uint8Array(32));
  assert.throws(() => verifyQuote(old.quote, options({ expectedNonce: now })), refusedWith('stale_nonce'));
});

test('a quote signed by a foreign attestation key is refused', async () => {
  const { quote, nonce } = await freshQuote(enclave);
  const foreign = AttestationService.create();
  assert.throws(
    () => verifyQuote(quote, options({ expectedNonce: nonce, trustAnchor: foreign.trustAnchor })),
    refusedWith('bad_signature'),
  );
  // And a quote from a platform that uses the foreign service does not verify against ours.
  const foreignPlatform = await Platform.open({ dir: join(dir, 'foreign-platform'), attestation: foreign });
  const other = await foreignPlatform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(join(dir, 'foreign.sealed')),
  });
  try {
    const q = await freshQuote(other);
    assert.throws(() => verifyQuote(q.quote, options({ expectedNonce: q.nonce })), refusedWith('bad_signature'));
  } finally {
    await other.terminate();
  }
});

test('report data for another key is refused', async () => {
  const { quote, nonce } = await freshQuote(enclave);
  const otherKey = publicKeyOf(randomPrivateKey());
  assert.throws(
    () => verifyQuote(quote, options({ expectedNonce: nonce, expectedReportData: exampleReportData(otherKey) })),
    refusedWith('report_data_mismatch'),
  );
  // Swapping the report data inside the quote breaks the signature instead.
  const swapped = { ...quote, reportData: Buffer.from(exampleReportData(otherKey)).toString('hex') };
  assert.throws(
    () => verifyQuote(swapped, options({ expectedNonce: nonce, expectedReportData: exampleReportData(otherKey) })),
    refusedWith('bad_signature'),
  );
});

test('a debug enclave quote is refused unless debug is allowed', async () => {
  const { quote, nonce, publicKey } = await freshQuote(debugEnclave);
  assert.equal(quote.debug, true);
  assert.equal(debugEnclave.measurement, enclave.measurement, 'debug is an attribute, not part of the measurement');
  assert.throws(() => verifyQuote(quote, options({ expectedNonce: nonce })), refusedWith('debug_not_allowed'));
  assert.equal(
    verifyQuote(
      quote,
      options({ expectedNonce: nonce, allowDebug: true, expectedReportData: exampleReportData(publicKey) }),
    ).debug,
    true,
  );
  // Flipping the flag to pass as a production quote breaks the signature.
  assert.throws(
    () => verifyQuote({ ...quote, debug: false }, options({ expectedNonce: nonce })),
    refusedWith('bad_signature'),
  );
});

test('malformed quotes are refused as malformed', async () => {
  const { quote, nonce } = await freshQuote(enclave);
  const bad: unknown[] = [
    null,
    42,
    'quote',
    [],
    {},
    { ...quote, version: 2 },
    { ...quote, signature: 'zz' },
    { ...quote, measurement: quote.measurement.toUpperCase() },
    { ...quote, extra: 1 },
    { ...quote, debug: 'false' },
    { ...quote, nonce: '' },
    (({ signature: _, ...rest }) => rest)(quote),
  ];
  for (const q of bad) assert.throws(() => verifyQuote(q, options({ expectedNonce: nonce })), refusedWith('malformed'));
});

test('the attestation key survives save/load with mode 0600', async () => {
  const file = join(dir, 'attestation.key');
  await attestation.save(file);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const loaded = await AttestationService.load(file);
  assert.equal(loaded.trustAnchor, attestation.trustAnchor);
  const { quote, nonce } = await freshQuote(enclave);
  verifyQuote(quote, {
    trustAnchor: loaded.trustAnchor,
    allowedMeasurements: [enclave.measurement],
    expectedNonce: nonce,
  });
});
