public enum KeyRotationPlaceholder {}
