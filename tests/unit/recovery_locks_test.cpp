#include "pipelines/recovery_locks.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

// pg_waldump's lines (PostgreSQL 15, TZ=UTC) around a transaction that locked public.events
// (16385/16386) while the target passed; trimmed of the records that do not matter.
const char* const kWaldump =
    "rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/07000028, prev 0/06000090, "
    "desc: RUNNING_XACTS nextXid 764 latestCompletedXid 763 oldestRunningXid 764\n"
    "rmgr: Heap        len (rec/tot):     54/    54, tx:        781, lsn: 0/07056508, prev 0/070564B8, "
    "desc: LOCK off 11: xid 781: flags 0x00 LOCK_ONLY EXCL_LOCK , blkref #0: rel 1663/1/2619 blk 17\n"
    "rmgr: Transaction len (rec/tot):    162/   162, tx:        781, lsn: 0/070588C0, prev 0/07058880, "
    "desc: COMMIT 2026-11-30 14:58:29.679856 UTC; inval msgs: catcache 63 catcache 63\n"
    "rmgr: Transaction len (rec/tot):     34/    34, tx:        782, lsn: 0/0705A2D0, prev 0/070592A0, "
    "desc: COMMIT 2026-11-30 14:58:39.425924 UTC\n"
    "rmgr: Standby     len (rec/tot):     42/    42, tx:        783, lsn: 0/0705A2F8, prev 0/0705A2D0, "
    "desc: LOCK xid 783 db 16385 rel 16386 \n"
    "rmgr: Standby     len (rec/tot):     54/    54, tx:          0, lsn: 0/0705A310, prev 0/0705A2F8, "
    "desc: LOCK xid 783 db 16385 rel 16386 xid 790 db 16385 rel 16399 \n"
    "rmgr: Standby     len (rec/tot):     50/    50, tx:          0, lsn: 0/0705A320, prev 0/0705A310, "
    "desc: RUNNING_XACTS nextXid 784 latestCompletedXid 782 oldestRunningXid 783; 1 xacts: 783\n"
    "rmgr: Transaction len (rec/tot):     38/    38, tx:        783, lsn: 0/0705A328, prev 0/0705A320, "
    "desc: COMMIT 2026-11-30 14:58:42.474479 UTC\n"
    "rmgr: Transaction len (rec/tot):     38/    38, tx:          0, lsn: 0/0705A350, prev 0/0705A328, "
    "desc: COMMIT_PREPARED 748: 2026-11-30 14:58:43.000001 UTC\n"
    "rmgr: Transaction len (rec/tot):     34/    34, tx:        785, lsn: 0/0705A3B0, prev 0/0705A350, "
    "desc: ABORT 2026-11-30 14:58:44.5 UTC\n"
    "pg_waldump: error: error in WAL record at 0/705A400: invalid record length\n";

const RecoveryLock kEvents{16385, 16386, "public.events"};

TEST(RecoveryLocks, ReadsPgWaldump) {
  const auto records = parse_waldump(kWaldump);
  ASSERT_EQ(records.size(), 9u);  // the heap row lock is not a Standby LOCK record
  EXPECT_EQ(records[0].kind, WalRecord::Kind::running_xacts);
  EXPECT_EQ(records[0].xid, 764u);
  EXPECT_EQ(records[0].lsn, 0x07000028u);
  EXPECT_EQ(records[1].kind, WalRecord::Kind::commit);
  EXPECT_EQ(records[1].time, "2026-11-30 14:58:29.679856 UTC");
  EXPECT_EQ(records[3].kind, WalRecord::Kind::lock);
  ASSERT_EQ(records[3].locks.size(), 1u);
  EXPECT_EQ(records[3].locks[0].xid, 783u);
  EXPECT_EQ(records[3].locks[0].database, 16385u);
  EXPECT_EQ(records[3].locks[0].relation, 16386u);
  EXPECT_EQ(records[4].locks.size(), 2u);
  EXPECT_EQ(records[7].time, "2026-11-30 14:58:43.000001 UTC");  // COMMIT_PREPARED
  EXPECT_EQ(records[8].kind, WalRecord::Kind::abort);
}

TEST(RecoveryLocks, FindsWhereTheTransactionTookTheLockAndTheCommitBefore) {
  const auto records = parse_waldump(kWaldump);
  // Paused before the commit of 783: its lock is held.
  const auto origin = find_lock_origin(records, {kEvents}, 0x0705A328);
  ASSERT_TRUE(origin.has_value());
  EXPECT_EQ(origin->xid, 783u);
  EXPECT_EQ(origin->lock_lsn, 0x0705A2F8u);  // the first record, not its repetition
  EXPECT_EQ(origin->commit_before, "2026-11-30 14:58:39.425924 UTC");
  EXPECT_TRUE(origin->began_in_records);
  EXPECT_TRUE(origin->complete());
  // The latest target that leaves it out: just before that commit, which recovery then stops before.
  EXPECT_EQ(format_for_pgbackrest(*target_before(*origin->commit_before)), "2026-11-30 14:58:39.425923+00");
}

TEST(RecoveryLocks, ARepeatedLockAloneDoesNotShowWhereItBegan) {
  // Only the repetition that PostgreSQL writes with a snapshot of running transactions.
  auto records = parse_waldump(kWaldump);
  records.erase(records.begin(), records.begin() + 4);
  const auto origin = find_lock_origin(records, {kEvents}, 0x0705A328);
  ASSERT_TRUE(origin.has_value());
  EXPECT_EQ(origin->lock_lsn, 0x0705A310u);
  EXPECT_FALSE(origin->complete());
  EXPECT_FALSE(
      find_lock_origin(records, {RecoveryLock{16385, 99999, "public.other"}}, 0x0705A328).has_value());
}

TEST(RecoveryLocks, TheRefusalNamesTheRelationTheTransactionAndATarget) {
  const auto records = parse_waldump(kWaldump);
  const auto origin = find_lock_origin(records, {kEvents}, 0x0705A328);
  const auto target = parse_target_time("2026-11-30 14:58:40.460071+00")->instant;
  const auto error = recovery_lock_error({kEvents}, origin, target);
  EXPECT_EQ(error.kind, ErrorKind::target_window);
  EXPECT_NE(error.message.find("relation public.events"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("transaction 783"), std::string::npos) << error.message;
  EXPECT_NE(error.hint.find("--target '2026-11-30 14:58:39.425923+00'"), std::string::npos) << error.hint;
  // Without the WAL: the relation still, and no made-up target.
  const auto blind = recovery_lock_error({kEvents}, std::nullopt, target);
  EXPECT_NE(blind.message.find("relation public.events"), std::string::npos);
  EXPECT_EQ(blind.hint.find("--target"), std::string::npos);
}

TEST(RecoveryLocks, ReadsTheLockQueryAndWalPositions) {
  auto locks =
      parse_recovery_locks({{"16385", "16386", "public.events"}, {"0", "1260", "pg_catalog.pg_authid"}});
  ASSERT_TRUE(locks.ok());
  ASSERT_EQ(locks->size(), 2u);
  EXPECT_EQ((*locks)[1].database, 0u);
  EXPECT_EQ((*locks)[1].name, "pg_catalog.pg_authid");
  EXPECT_FALSE(parse_recovery_locks({{"x", "1", "t"}}).ok());
  EXPECT_EQ(parse_lsn("0/705A2F8"), 0x705A2F8u);
  EXPECT_EQ(parse_lsn("1A/0"), 0x1A00000000u);
  EXPECT_FALSE(parse_lsn("0705A2F8").has_value());
  EXPECT_EQ(format_lsn(0x1A0705A2F8u), "1A/705A2F8");
  EXPECT_EQ(segment_start("000000010000000000000007", 16u << 20), 0x07000000u);
  EXPECT_EQ(segment_start("0000000200000001000000FF", 16u << 20), 0x1FF000000u);
  EXPECT_FALSE(segment_start("00000001000000000000000", 16u << 20).has_value());
  EXPECT_EQ(previous_segment("000000010000000000000007", 16u << 20), "000000010000000000000006");
  EXPECT_EQ(previous_segment("000000020000000100000000", 16u << 20), "0000000200000000000000FF");
  EXPECT_EQ(previous_segment("000000020000000100000000", 64u << 20), "00000002000000000000003F");
  EXPECT_FALSE(previous_segment("000000010000000000000000", 16u << 20).has_value());
}

}  // namespace
}  // namespace agent
