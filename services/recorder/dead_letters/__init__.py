"""What the recorder cannot store: entries and work items that go to `dead_letters`."""
