-- The headers of each attempt's request and response, as `name: value` lines (purged with
-- the response body by the retention policy).
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN response_headers TEXT;
