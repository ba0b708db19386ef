created_at
history
withprefix-1.0-h0_0.json
