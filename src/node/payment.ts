/**
 * A payment as the host records it and the REST API shows it. Its own file because both the payment
 * log (payment-log.ts) and the observers (observer.ts) speak of it, and neither should import the other.
 */
export type PaymentStatus = 'pending' | 'in_flight' | 'succeeded' | 'failed';

export interface Payment {
  payment_id: string;
  direction: 'outgoing' | 'incoming';
  channel_id: string;
  amount_sat: number;
  status: PaymentStatus;
  failure_code: string | null;
  created_at: number;
  resolved_at: number | null;
  /** Multi-hop payments: the destination, the node ids of the path, and the fees paid to intermediaries. */
  dest?: string;
  route?: string[];
  fee_sat?: number;
}
