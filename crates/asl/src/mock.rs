//! Mocked service integrations in the Step Functions Local mock-config format (`SFN_MOCK_CONFIG`).
