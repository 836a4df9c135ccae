/**
 * The work the node host does on its own (timers, redials, event follow-ups, journal writes), by name.
 * Each name is a stable label of teechain_background_failures_total{task} (src/metrics/node-metrics.ts);
 * failure-reporter.ts is how a failure of one is told.
 */
/** The host's background tasks, each a stable metric label. */
export const BACKGROUND_TASKS = [
  /** Starting the enclave's handshake on a new connection (the connection is closed). */
  'peer_handshake',
  /** Handing a peer's frames to the enclave (the connection is closed). */
  'peer_recv',
  /** Telling the enclave a connection closed. */
  'peer_disconnect',
  /** Re-dialling a saved peer or a committee member (tried again with backoff). */
  'redial',
  /** A backup asking its primary to admit it (tried again with backoff). */
  'committee_join',
  /** Reading or writing the peers file (peers.json). */
  'peers_file',
  /** Announcing this node's channels for multi-hop routing (announced again at the next tick). */
  'gossip',
  /** Showing the enclave a pending deposit's funding again. */
  'deposit_confirm',
  /** Looking up a channel deposit's spend on the chain. */
  'chain_lookup',
  /** Showing the enclave a transaction spending a channel's deposits. */
  'channel_spent',
  /** Following the chain's spends of channel deposits (the watcher tries again at its next poll). */
  'chain_watch',
  /** Writing the journal of keyed payments (the enclave keeps their refs until a later write or restart). */
  'payment_journal',
  /** Reading the chain's fee rate again for routed rounds (they keep the last one meanwhile). */
  'fee_rate',
] as const;
export type BackgroundTask = (typeof BACKGROUND_TASKS)[number];

/** What a failure was about (a channel id, a peer's address, a connection), for the log line. */
export type FailureDetail = Readonly<Record<string, string | number>>;
