from speech_assets.cli import main

raise SystemExit(main())
