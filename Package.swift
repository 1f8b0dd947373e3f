// swift-tools-version:6.1
import PackageDescription

/// Settings every target of ours shares: Swift 6 mode plus the upcoming features STYLE.md asks for.
let strictSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
  name: "crm",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "crmd", targets: ["crmd"]),
    .executable(name: "crm", targets: ["crm"]),
    .executable(name: "crm-bench", targets: ["crm-bench"]),
    .library(name: "LibPQ", targets: ["LibPQ"]),
    .library(name: "CRMCore", targets: ["CRMCore"]),
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"6.0.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    .package(url: "https://github.com/yaslab/CSV.swift.git", from: "2.5.2"),
    .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
  ],
  targets: [
    .systemLibrary(
      name: "CLibPQ",
      pkgConfig: "libpq",
      providers: [.apt(["libpq-dev"])]
    ),
    .target(
      name: "LibPQ",
      dependencies: [
        "CLibPQ",
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "CRMCore",
      dependencies: [],
      swiftSettings: strictSettings
    ),
    .target(
      name: "CRMStore",
      dependencies: [
        "LibPQ",
        "CRMCore",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      exclude: ["Migrations/README.md"],
      resources: [
        .embedInCode("Migrations/0001_platform.sql"),
        .embedInCode("Migrations/0002_leads.sql"),
        .embedInCode("Migrations/0003_match_keys.sql"),
        .embedInCode("Migrations/0004_tenant_match_indexes.sql"),
        .embedInCode("Migrations/0005_duplicate_rules.sql"),
        .embedInCode("Migrations/0006_interactions.sql"),
        .embedInCode("Migrations/0007_capture.sql"),
        .embedInCode("Migrations/0008_merge.sql"),
        .embedInCode("Migrations/0009_imports.sql"),
        .embedInCode("Migrations/0010_key_lookups.sql"),
        .embedInCode("Migrations/0011_match_candidates.sql"),
        .embedInCode("Migrations/0012_registration_ids.sql"),
        .embedInCode("Migrations/0013_gin_without_pending_lists.sql"),
        .embedInCode("Migrations/0014_name_blocks.sql"),
        .embedInCode("Migrations/0015_static_match_candidates.sql"),
        .embedInCode("Migrations/0016_key_lookups_without_tenant_entry.sql"),
        .embedInCode("Migrations/0017_swapped_name_neighbours.sql"),
        .embedInCode("Migrations/0018_company_names_without_swapped_scans.sql"),
        .embedInCode("Migrations/0019_opportunities.sql"),
        .embedInCode("Migrations/0020_lead_conversion.sql"),
        .embedInCode("Migrations/0021_pools.sql"),
        .embedInCode("Migrations/0022_assignment_rules.sql"),
        .embedInCode("Migrations/0023_tasks.sql"),
        .embedInCode("Migrations/0024_lead_score.sql"),
        .embedInCode("Migrations/0025_hardening.sql"),
        .embedInCode("Migrations/0026_service.sql"),
        .embedInCode("Migrations/0027_satisfaction.sql"),
        .embedInCode("Migrations/0028_support_capture_keys.sql"),
        .embedInCode("Migrations/0029_escalations.sql"),
        .embedInCode("Migrations/0030_ticket_assignment.sql"),
        .embedInCode("Migrations/0031_service_report.sql"),
        .embedInCode("Migrations/0032_ticket_children_without_fk_checks.sql"),
        .embedInCode("Migrations/0033_change_feed.sql"),
        .embedInCode("Migrations/0034_change_feed_retention.sql"),
        .embedInCode("Migrations/0035_webhooks.sql"),
        .embedInCode("Migrations/0036_field_security.sql"),
        .embedInCode("Migrations/0037_trigger_rules.sql"),
        .embedInCode("Migrations/0038_approvals.sql"),
        .embedInCode("Migrations/0039_faster_rules.sql"),
        .embedInCode("Migrations/0040_rules_cached_plans.sql"),
        .embedInCode("Migrations/0041_rules_by_key.sql"),
        .embedInCode("Migrations/0042_rules_planned_per_statement.sql"),
        .embedInCode("Migrations/0043_drop_unused_rule_rows.sql"),
        .embedInCode("Migrations/0044_assignment_routing_in_sql.sql"),
        .embedInCode("Migrations/0045_rules_compiled_conditions.sql"),
        .embedInCode("Migrations/0046_rules_engine_split.sql"),
        .embedInCode("Migrations/0047_rules_entries_by_key.sql"),
        .embedInCode("Migrations/0048_feed_streams_without_heartbeat.sql"),
        .embedInCode("Migrations/0049_rules_match_once.sql"),
        .embedInCode("Migrations/0050_billing.sql"),
        .embedInCode("Migrations/0051_billing_financials.sql"),
        .embedInCode("Migrations/0052_disputes.sql"),
        .embedInCode("Migrations/0053_billing_panel_reads.sql"),
        .embedInCode("Migrations/0054_collections.sql"),
        .embedInCode("Migrations/0055_instalments.sql"),
        .embedInCode("Migrations/0056_dispute_evidence.sql"),
        .embedInCode("Migrations/0057_billing_panel_covering.sql"),
        .embedInCode("Migrations/0058_ticket_invoice_lines.sql"),
        .embedInCode("Migrations/0059_billing_imports.sql"),
        .embedInCode("Migrations/0060_import_write_path.sql"),
        .embedInCode("Migrations/0061_analyze_if_stale.sql"),
        .embedInCode("Migrations/0062_forecast.sql"),
        .embedInCode("Migrations/0063_forecast_snapshots.sql"),
        .embedInCode("Migrations/0064_search.sql"),
        .embedInCode("Migrations/0065_search_columns.sql"),
        .embedInCode("Migrations/0066_analytics.sql"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "CRMProto",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .target(
      name: "CRMServer",
      dependencies: [
        "CRMStore",
        "CRMCore",
        "CRMProto",
        "LibPQ",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "crmd",
      dependencies: [
        "CRMServer",
        "CRMStore",
        "CRMCore",
        "LibPQ",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "crm",
      dependencies: [
        "CRMProto",
        .product(name: "CSV", package: "CSV.swift"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "crm-bench",
      dependencies: [
        "CRMProto",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "Histogram", package: "hdrhistogram-swift"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: strictSettings
    ),
    .target(
      name: "CRMTestSupport",
      dependencies: ["CRMStore", "CRMCore", "LibPQ"],
      path: "Tests/Support",
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "CRMCoreTests",
      dependencies: ["CRMCore", .product(name: "PropertyBased", package: "swift-property-based")],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "LibPQTests",
      dependencies: ["LibPQ", "CRMTestSupport", "CRMStore"],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "CRMStoreTests",
      dependencies: ["CRMStore", "CRMCore", "LibPQ", "CRMTestSupport"],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "CRMServerTests",
      dependencies: [
        "CRMServer",
        "CRMStore",
        "CRMCore",
        "CRMProto",
        "LibPQ",
        "CRMTestSupport",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ],
      swiftSettings: strictSettings
    ),
  ]
)
