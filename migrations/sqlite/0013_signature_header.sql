-- A signature header in another sender's style (GitHub, Stripe, hex or base64 HMAC) sent besides
-- the Standard Webhooks ones, with an optional event-id header: JSON {name, format,
-- eventIdHeader}; NULL: none.
ALTER TABLE endpoints ADD COLUMN signature_header TEXT;
