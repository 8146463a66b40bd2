-- A payload filter per endpoint (a Common Expression Language expression over the message);
-- NULL: every message its event types and channels take.
ALTER TABLE endpoints ADD COLUMN filter TEXT COLLATE "C";
-- Why a delivery was filtered out when its filter could not tell (a field it reads is
-- missing, …): recorded once, with the delivery (status 6, filtered).
ALTER TABLE deliveries ADD COLUMN filter_error TEXT;
