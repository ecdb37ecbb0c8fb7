-- User ids keep the JSON type the app gave them: 7 and "7" are different users (as in the
-- seed). `user_id` holds the text (a number in canonical decimal), `user_id_type` the type.
ALTER TABLE sessions ADD COLUMN user_id_type TEXT NOT NULL DEFAULT 'string';
