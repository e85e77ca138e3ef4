-- 0006: the accounts a request named, platform -> provider account id ({"linkedin":
-- "spc_..."}), kept with the post so every attempt (and every worker) picks the same ones.
-- NULL: none named; the worker picks the user's account on each key.
ALTER TABLE social_posts ADD COLUMN account_ids JSONB;
ALTER TABLE social_posts ADD CONSTRAINT social_posts_account_ids_object CHECK (
    account_ids IS NULL OR jsonb_typeof(account_ids) = 'object');
