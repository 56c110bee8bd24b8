-- The refunds asked for, the latest first, which the dashboard lists every few seconds: read
-- through this index rather than every payment ever recorded.
CREATE INDEX payments_refund_requests ON payments (updated_at DESC, payment_id DESC) WHERE outcome = 'REFUND_REQUESTED';
