"""Pure scheduling logic: no Flask, no database, no clock; the caller passes every date."""
