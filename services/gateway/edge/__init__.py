"""The gateway's edge: request limits enforced before any route parses anything, and the
pure checks of Twilio's form fields."""
