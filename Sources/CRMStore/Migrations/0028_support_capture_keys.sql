-- Support capture keys: a capture key whose channel is 'support' captures inbound support mail into
-- tickets (CaptureSupportEmail) and nothing else.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_capture_channel_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_capture_channel_check
  CHECK (capture_channel IN ('web_form', 'email', 'phone', 'chat', 'event', 'partner', 'support'));
