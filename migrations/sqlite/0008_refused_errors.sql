-- Attempt errors no longer tell API and portal users what a refused host name resolved to:
-- older ones are rewritten to what callers are told now.
UPDATE attempts
   SET error = 'destination refused: private or reserved address'
 WHERE error LIKE '%destination refused: % resolves to %'
    OR error LIKE '%destination refused: % is a % address%';
